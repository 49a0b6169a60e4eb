"""The gateway's own HTTPS: its settings (both files or neither), one clear line for a file it cannot use, every
kind of answer (the hot GET, a live SSE stream, health, metrics, the page) through a real uvicorn over TLS,
nothing served in plain HTTP on that port, and a renewed certificate served without a restart."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn
from pydantic import ValidationError
from structlog.testing import capture_logs

from tests.unit.gateway.fakes import make_feed, publish
from tickcast.gateway.app import create_app
from tickcast.gateway.hotget import HotGetProtocol, hot_get_protocol
from tickcast.gateway.settings import GatewaySettings
from tickcast.gateway.tls import ServerTls, TlsFileError, TlsFiles, load_tls
from tickcast.testing.http_thread import get, loop_of, port_of, read_head, serving
from tickcast.testing.tls import ThrowawayCA, make_ca
from tickcast.testing.waiting import wait_for


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"gateway_tls_cert_file": "c"}, "TICKCAST_GATEWAY_TLS_CERT_FILE is set without TICKCAST_GATEWAY_TLS_KEY_FILE"),
        ({"gateway_tls_key_file": "k"}, "TICKCAST_GATEWAY_TLS_KEY_FILE is set without TICKCAST_GATEWAY_TLS_CERT_FILE"),
        (
            {"gateway_tls_key_password_file": "p"},
            "TICKCAST_GATEWAY_TLS_KEY_PASSWORD_FILE is set without TICKCAST_GATEWAY_TLS_KEY_FILE",
        ),
    ],
)
def test_the_certificate_and_its_key_come_together_or_not_at_all(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GatewaySettings(**given)


def _encrypted(key: Path, password: bytes, into: Path) -> Path:
    from cryptography.hazmat.primitives import serialization

    loaded = serialization.load_pem_private_key(key.read_bytes(), None)
    into.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    )
    return into


def test_each_unusable_file_is_one_line_naming_its_setting_and_file(ca: ThrowawayCA, tmp_path: Path) -> None:
    other = make_ca(tmp_path / "other")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n", encoding="utf-8")
    locked = _encrypted(ca.server_key, b"s3cret-pass", tmp_path / "locked.key")
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text("s3cret-pass\n", encoding="utf-8")
    wrong.write_text("nope\n", encoding="utf-8")

    def refusal(files: TlsFiles) -> str:
        with pytest.raises(TlsFileError) as caught:
            ServerTls(files)
        return str(caught.value)

    assert refusal(TlsFiles(junk, ca.server_key)) == (
        f"TICKCAST_GATEWAY_TLS_CERT_FILE {junk}: no PEM certificate in it (NO_CERTIFICATE_OR_CRL_FOUND)"
    )
    assert refusal(TlsFiles(ca.server_cert, other.server_key)) == (
        f"TICKCAST_GATEWAY_TLS_KEY_FILE {other.server_key}: its key is another certificate's for "
        f"TICKCAST_GATEWAY_TLS_CERT_FILE {ca.server_cert}"
    )
    assert refusal(TlsFiles(ca.server_cert, junk)).startswith(
        f"TICKCAST_GATEWAY_TLS_KEY_FILE {junk}: no usable PEM private key for"
    )
    assert refusal(TlsFiles(ca.server_cert, locked)) == (
        f"TICKCAST_GATEWAY_TLS_KEY_FILE {locked}: the key is encrypted; set TICKCAST_GATEWAY_TLS_KEY_PASSWORD_FILE"
    )
    assert "or the password in TICKCAST_GATEWAY_TLS_KEY_PASSWORD_FILE is wrong" in refusal(
        TlsFiles(ca.server_cert, locked, wrong)
    )
    assert refusal(TlsFiles(ca.server_cert, ca.server_key, tmp_path / "absent")) == (
        f"TICKCAST_GATEWAY_TLS_KEY_PASSWORD_FILE {tmp_path / 'absent'}: No such file or directory"
    )
    assert ServerTls(TlsFiles(ca.server_cert, locked, right)).loads == 1


def test_the_oldest_version_accepted_is_the_settings(ca: ThrowawayCA) -> None:
    settings = GatewaySettings(
        gateway_tls_cert_file=ca.server_cert, gateway_tls_key_file=ca.server_key, gateway_tls_min_version="1.3"
    )
    tls = load_tls(settings)
    assert tls is not None and tls.context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert ServerTls(TlsFiles(ca.server_cert, ca.server_key)).context.minimum_version == ssl.TLSVersion.TLSv1_2


def client_context(ca: ThrowawayCA) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.ca_file))


@pytest.fixture
def https(ca: ThrowawayCA) -> Iterator[tuple[Any, uvicorn.Server, ServerTls]]:
    """(feed, server, its TLS) of the gateway app with the hot protocol, over HTTPS."""
    feed = make_feed()
    tls = ServerTls(TlsFiles(ca.server_cert, ca.server_key))
    with serving(create_app(feed, tls=tls), hot_get_protocol(feed), tls=tls.context) as server:
        yield feed, server, tls


def test_every_kind_of_answer_works_over_https_and_the_hot_get_is_still_answered_in_the_protocol(
    ca: ThrowawayCA, https: tuple[Any, uvicorn.Server, ServerTls]
) -> None:
    feed, server, _ = https
    (item,) = asyncio.run_coroutine_threadsafe(_publish(feed, "SPY"), loop_of(server)).result(5)
    base = f"https://127.0.0.1:{port_of(server)}"
    with httpx.Client(base_url=base, verify=client_context(ca), timeout=5) as client:
        before = HotGetProtocol.answered
        latest = client.get("/v1/predictions/SPY")
        assert latest.status_code == 200 and latest.headers["etag"] == item.etag.decode()
        assert HotGetProtocol.answered == before + 1, "the hot GET went through ASGI over TLS"
        assert client.get("/health").json()["status"] == "ok"
        assert "tickcast_gateway_clients" in client.get("/metrics").text
        assert "<html" in client.get("/").text.lower()
        assert client.get("/v1/symbols").json()["symbols"][0]["symbol"] == "SPY"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port_of(server)}/health", timeout=5)


def test_a_live_event_reaches_an_idle_stream_over_tls_through_the_hubs_direct_write(
    ca: ThrowawayCA, https: tuple[Any, uvicorn.Server, ServerTls]
) -> None:
    feed, server, _ = https
    raw = socket.create_connection(("127.0.0.1", port_of(server)), timeout=5)
    with client_context(ca).wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        conn.sendall(get("/v1/stream?symbols=SPY"))
        head, body = read_head(conn)  # type: ignore[arg-type] # an SSLSocket is a socket
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        wait_for(lambda: len(feed.hub) == 1, 5, "the client in the hub")
        (subscription,) = feed.hub._clients
        wait_for(lambda: subscription.direct is not None, 5, "the idle stream to let the hub write to it")
        (item,) = asyncio.run_coroutine_threadsafe(_publish(feed, "SPY"), loop_of(server)).result(5)
        chunk = b"%x\r\n%b\r\n" % (len(item.sse_frame), item.sse_frame)
        while chunk not in body:
            body += conn.recv(65536)
        assert body.endswith(chunk)


@dataclass
class Renewal:
    """Two certificates of one CA for 127.0.0.1, the first installed where ``tls`` reads it; ``trusted`` trusts
    that CA."""

    cert: Path
    key: Path
    first: trustme.LeafCert
    second: trustme.LeafCert
    trusted: ssl.SSLContext

    def install(self, issued: trustme.LeafCert, key_of: trustme.LeafCert | None = None) -> None:
        """As the kubelet updates a Secret volume: new files, swapped in (new inodes)."""
        for path, blob in ((self.cert, issued.cert_chain_pems[0]), (self.key, (key_of or issued).private_key_pem)):
            fresh = path.with_suffix(".new")
            blob.write_to_path(str(fresh))
            fresh.replace(path)

    def served(self, port: int) -> trustme.LeafCert:
        """Which of the two certificates a new connection to ``port`` gets."""
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            self.trusted.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            der = conn.getpeercert(binary_form=True)
        (issued,) = [
            c
            for c in (self.first, self.second)
            if der == ssl.PEM_cert_to_DER_cert(c.cert_chain_pems[0].bytes().decode())
        ]
        return issued


@pytest.fixture
def renewal(tmp_path: Path) -> Renewal:
    authority = trustme.CA()
    trusted = ssl.create_default_context()
    authority.configure_trust(trusted)
    made = Renewal(
        tmp_path / "tls.crt",
        tmp_path / "tls.key",
        authority.issue_cert("127.0.0.1"),
        authority.issue_cert("127.0.0.1"),
        trusted,
    )
    made.install(made.first)
    return made


def test_a_renewed_certificate_is_served_to_new_connections_without_a_restart(renewal: Renewal) -> None:
    tls = ServerTls(TlsFiles(renewal.cert, renewal.key))
    feed = make_feed()
    # The app is not given ``tls``: its watcher, on the server's thread and clock, would race the refreshes this
    # test makes with its own clock (a check of the watcher's makes the next ones here too early to look).
    with serving(create_app(feed), hot_get_protocol(feed), tls=tls.context) as server:
        port = port_of(server)
        assert renewal.served(port) is renewal.first
        assert not tls.refresh(0.0), "unchanged files were loaded again"
        renewal.install(renewal.second, key_of=renewal.first)  # a half-done renewal: another certificate's key
        assert not tls.refresh(10.0) and tls.loads == 1
        assert renewal.served(port) is renewal.first
        renewal.install(renewal.second)
        assert tls.refresh(20.0) and tls.loads == 2
        assert renewal.served(port) is renewal.second


def test_the_apps_watcher_serves_a_renewed_certificate_within_seconds(renewal: Renewal) -> None:
    tls = ServerTls(TlsFiles(renewal.cert, renewal.key))
    feed = make_feed()
    with serving(create_app(feed, tls=tls), hot_get_protocol(feed), tls=tls.context) as server:
        port = port_of(server)
        assert renewal.served(port) is renewal.first
        renewal.install(renewal.second)
        wait_for(lambda: renewal.served(port) is renewal.second, 10, "the app's watcher to load the renewed pair")
    assert tls.loads == 2


def test_a_file_gone_between_its_read_and_its_load_is_a_failed_renewal_not_a_dead_watcher(
    ca: ThrowawayCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A renewal that replaces the files by deleting them first can take the key away after load_chain read it
    # and before OpenSSL opens it. An exception other than TlsFileError would end the watching task for good.
    from tickcast.gateway import tls as tls_module

    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(ca.server_cert.read_bytes())
    key.write_bytes(ca.server_key.read_bytes())
    tls = ServerTls(TlsFiles(cert, key))
    read = tls_module._read

    def read_then_lose(setting: str, path: Path) -> bytes:
        data = read(setting, path)
        if path == key:
            path.unlink()
        return data

    monkeypatch.setattr(tls_module, "_read", read_then_lose)
    key.write_bytes(ca.server_key.read_bytes() + b"\n")  # a renewal: the files' stamp changes
    with capture_logs() as logs:
        assert not tls.refresh(10.0)
    assert tls.loads == 1
    [failed] = [line for line in logs if line["event"] == "gateway_tls_reload_failed"]
    said = (
        f"TICKCAST_GATEWAY_TLS_KEY_FILE {key} or TICKCAST_GATEWAY_TLS_CERT_FILE {cert}: No such file or directory "
        "(changed while it was loaded)"
    )
    assert failed["error"] == said
    key.write_bytes(ca.server_key.read_bytes())
    with pytest.raises(TlsFileError) as caught:
        ServerTls(TlsFiles(cert, key))  # at start, the same one line
    assert str(caught.value) == said


async def _publish(feed: Any, *symbols: str) -> list[Any]:
    return publish(feed, *symbols)  # on the server's loop, as the Kafka source delivers


def test_run_gateway_serves_with_the_certificates_context(ca: ThrowawayCA, monkeypatch: pytest.MonkeyPatch) -> None:
    from tickcast.gateway import server

    served: list[ssl.SSLContext | None] = []

    def run(self: uvicorn.Server) -> None:
        self.config.load()
        served.append(self.config.ssl)

    monkeypatch.setattr(server, "settle_gc", lambda threshold0, freeze: None)
    monkeypatch.setattr(server.uvicorn.Server, "run", run)
    settings = GatewaySettings(gateway_tls_cert_file=ca.server_cert, gateway_tls_key_file=ca.server_key)
    tls = load_tls(settings)
    assert tls is not None
    server.run_gateway(settings, tls)
    server.run_gateway(GatewaySettings())
    assert served == [tls.context, None]
