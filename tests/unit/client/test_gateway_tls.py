"""The client against a gateway serving HTTPS (a real uvicorn in this process): with the gateway's CA it reads
the latest and the stream; without it, or over https to a plain-HTTP port, it fails at once with one error
naming the URL, instead of reconnecting forever."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.gateway.fakes import https_gateway, make_feed, publish_on_loop
from tickcast.client import ClientSettings, GatewayTlsError, TickcastClient
from tickcast.client.sources import GatewaySource
from tickcast.gateway.app import create_app
from tickcast.gateway.hotget import hot_get_protocol
from tickcast.testing.http_thread import port_of, serving
from tickcast.testing.tls import ThrowawayCA, make_ca
from tickcast.testing.waiting import wait_for


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def gateway(ca: ThrowawayCA) -> Iterator[tuple[Any, Any]]:
    """(feed, server) of a gateway over HTTPS holding SPY."""
    with https_gateway(ca, "SPY") as served:
        yield served


def test_with_the_gateways_ca_the_client_reads_latest_and_the_stream(ca: ThrowawayCA, gateway: tuple[Any, Any]) -> None:
    feed, server = gateway
    url = f"https://127.0.0.1:{port_of(server)}"
    settings = ClientSettings(client_gateway_url=url, client_gateway_ca_file=ca.ca_file)
    client = TickcastClient.from_settings(settings)
    latest = asyncio.run(client.latest("SPY"))
    assert latest is not None and latest.symbol == "SPY"

    async def one_live() -> str:
        stream = TickcastClient.gateway(url, ca_file=str(ca.ca_file)).subscribe(["SPY"], idle_timeout_s=10)
        wait = asyncio.get_running_loop().run_in_executor(
            None, lambda: wait_for(lambda: len(feed.hub) == 1, 5, "the stream to connect")
        )
        waiting = asyncio.ensure_future(stream.__anext__())
        await wait
        publish_on_loop(feed, server, "SPY")
        record = await asyncio.wait_for(waiting, 10)
        await stream.aclose()
        return record.symbol

    assert asyncio.run(one_live()) == "SPY"


def test_without_the_ca_latest_and_subscribe_fail_at_once_naming_the_url(gateway: tuple[Any, Any]) -> None:
    _, server = gateway
    url = f"https://127.0.0.1:{port_of(server)}"
    expected = (
        f"TLS to {url} failed: certificate verify failed: unable to get local issuer certificate (trusted CAs: "
        "the system's; trust the gateway's CA with ca_file= or TICKCAST_CLIENT_GATEWAY_CA_FILE)"
    )
    client = TickcastClient.gateway(url)
    with pytest.raises(GatewayTlsError) as caught:
        asyncio.run(client.latest("SPY"))
    assert str(caught.value) == expected

    async def subscribe() -> None:
        async for _ in client.subscribe(["SPY"]):
            pass

    started = time.monotonic()
    with pytest.raises(GatewayTlsError) as caught:
        asyncio.run(asyncio.wait_for(subscribe(), 10))
    assert str(caught.value) == expected
    assert client.source.reconnects == 0, "a TLS failure was retried"  # type: ignore[attr-defined]
    assert time.monotonic() - started < 5


def test_https_to_a_plain_http_gateway_says_so(tmp_path: Path) -> None:
    feed = make_feed()
    with serving(create_app(feed), hot_get_protocol(feed)) as server:
        url = f"https://127.0.0.1:{port_of(server)}"
        with pytest.raises(GatewayTlsError, match=f"TLS to {url} failed: .*does the gateway serve HTTPS"):
            asyncio.run(TickcastClient.gateway(url).latest("SPY"))


def test_http_to_an_https_gateway_says_to_use_https_instead_of_reconnecting_in_silence(
    gateway: tuple[Any, Any],
) -> None:
    _, server = gateway
    port = port_of(server)
    expected = (
        f"http://127.0.0.1:{port} closed the connection without an answer and speaks TLS on that port: the gateway "
        f"serves HTTPS only; use https://127.0.0.1:{port}"
    )
    client = TickcastClient.gateway(f"http://127.0.0.1:{port}")
    with pytest.raises(GatewayTlsError) as caught:
        asyncio.run(client.latest("SPY"))
    assert str(caught.value) == expected

    async def subscribe() -> None:
        async for _ in client.subscribe(["SPY"]):
            pass

    with pytest.raises(GatewayTlsError) as caught:
        asyncio.run(asyncio.wait_for(subscribe(), 10))
    assert str(caught.value) == expected
    assert client.source.reconnects == 0, "the plain-HTTP attempt was retried"  # type: ignore[attr-defined]


def test_a_plain_server_hanging_up_without_an_answer_is_retried_not_called_https() -> None:
    # The same symptom from a plain-HTTP gateway shutting down: the TLS probe fails there, so the stream reconnects.
    async def scenario() -> None:
        third = asyncio.Event()
        accepted = 0

        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            if accepted >= 3:
                third.set()
            await reader.read(10)  # a request's (or the probe's ClientHello's) first bytes
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        source = GatewaySource(f"http://127.0.0.1:{port}", reconnect_max_s=0.1)
        running = asyncio.ensure_future(source.run(None, asyncio.Queue()))
        waiting = asyncio.ensure_future(third.wait())
        await asyncio.wait({running, waiting}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        try:
            if running.done():
                running.result()  # raises what ended it
            assert third.is_set(), "fewer than three connections in 10 s"
            assert source.reconnects >= 1
        finally:
            running.cancel()
            waiting.cancel()
            server.close()

    asyncio.run(scenario())


def test_an_unusable_ca_file_is_one_error_naming_the_file_and_the_setting(tmp_path: Path) -> None:
    missing, junk = tmp_path / "absent.pem", tmp_path / "junk.pem"
    junk.write_text("not a certificate\n", encoding="utf-8")
    with pytest.raises(GatewayTlsError) as caught:
        TickcastClient.gateway("https://gw:8443", ca_file=missing)
    assert str(caught.value) == (
        f"CA file {missing} (ca_file= or TICKCAST_CLIENT_GATEWAY_CA_FILE): No such file or directory"
    )
    with pytest.raises(GatewayTlsError) as caught:
        TickcastClient.gateway("https://gw:8443", ca_file=junk)
    assert str(caught.value) == (
        f"CA file {junk} (ca_file= or TICKCAST_CLIENT_GATEWAY_CA_FILE): no PEM certificate in it "
        "(NO_CERTIFICATE_OR_CRL_FOUND)"
    )


def test_a_connection_closed_during_the_handshake_is_retried_like_any_dropped_connection() -> None:
    # A gateway shutting down, or a balancer without a backend, accepts and hangs up: no sign of a certificate or
    # protocol mismatch, so the stream reconnects as it would over plain HTTP instead of ending.
    async def scenario() -> None:
        third = asyncio.Event()
        accepted = 0

        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            if accepted == 3:
                third.set()
            await reader.read(10)  # the ClientHello's first bytes
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        source = GatewaySource(f"https://127.0.0.1:{port}", reconnect_max_s=0.1)
        running = asyncio.ensure_future(source.run(None, asyncio.Queue()))
        waiting = asyncio.ensure_future(third.wait())
        await asyncio.wait({running, waiting}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        try:
            if running.done():
                running.result()  # raises what ended it
            assert third.is_set(), "fewer than three connections in 10 s"
        finally:
            running.cancel()
            waiting.cancel()
            server.close()

    asyncio.run(scenario())


def test_a_certificate_for_another_host_says_so_not_to_trust_another_ca(tmp_path: Path) -> None:
    elsewhere = make_ca(tmp_path / "ca", names=("gateway.example",))
    with https_gateway(elsewhere, "SPY") as (_, server):
        url = f"https://127.0.0.1:{port_of(server)}"
        with pytest.raises(GatewayTlsError) as caught:
            asyncio.run(TickcastClient.gateway(url, ca_file=elsewhere.ca_file).latest("SPY"))
    assert str(caught.value) == (
        f"TLS to {url} failed: certificate verify failed: IP address mismatch, certificate is not valid for "
        "'127.0.0.1'. (the certificate must name the host in the URL; the CA itself was trusted)"
    )
