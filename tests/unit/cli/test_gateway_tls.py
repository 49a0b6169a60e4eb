"""``tickcast gateway`` with half a TLS configuration or an unusable file stops with one line, before it waits
for the broker; ``tickcast subscribe --gateway https://...`` without the gateway's CA prints the TLS failure on
one line and exits 1, instead of reconnecting forever."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.unit.gateway.fakes import https_gateway
from tickcast.cli import app as cli
from tickcast.testing.http_thread import port_of
from tickcast.testing.tls import ThrowawayCA, make_ca


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def gateway(ca: ThrowawayCA) -> Iterator[tuple[Any, Any]]:
    """(feed, server) of a gateway over HTTPS holding SPY."""
    with https_gateway(ca, "SPY") as served:
        yield served


def test_a_certificate_without_a_key_stops_the_cli_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKCAST_GATEWAY_TLS_CERT_FILE", "/etc/tls/tls.crt")
    result = CliRunner().invoke(cli, ["gateway", "--port", "0"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "tickcast: error: invalid configuration: TICKCAST_GATEWAY_TLS_CERT_FILE is set without "
        "TICKCAST_GATEWAY_TLS_KEY_FILE: HTTPS needs both the certificate chain and its key"
    )


def test_a_missing_key_file_stops_the_gateway_before_the_broker_with_one_line(
    ca: ThrowawayCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKCAST_GATEWAY_TLS_CERT_FILE", str(ca.server_cert))
    monkeypatch.setenv("TICKCAST_GATEWAY_TLS_KEY_FILE", str(tmp_path / "tls.key"))
    monkeypatch.setenv("TICKCAST_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # never reached: the file stops it first
    result = CliRunner().invoke(cli, ["gateway", "--port", "0"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"tickcast: error: TICKCAST_GATEWAY_TLS_KEY_FILE {tmp_path / 'tls.key'}: No such file or directory"
    )
    assert "Traceback" not in result.output


def test_subscribe_on_the_command_line_prints_the_tls_failure_on_one_line(gateway: tuple[Any, Any]) -> None:
    _, server = gateway
    url = f"https://127.0.0.1:{port_of(server)}"
    result = CliRunner().invoke(cli, ["subscribe", "--gateway", url, "--count", "1", "--timeout", "10"])
    assert result.exit_code == 1, result.output
    assert (
        result.output.strip()
        .splitlines()[-1]
        .startswith(
            f"tickcast: error: TLS to {url} failed: certificate verify failed: unable to get local issuer certificate"
        )
    )
    assert "Traceback" not in result.output


def test_subscribe_with_an_unusable_ca_file_names_it_on_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "ca.pem"
    monkeypatch.setenv("TICKCAST_CLIENT_GATEWAY_CA_FILE", str(missing))
    result = CliRunner().invoke(cli, ["subscribe", "--gateway", "https://127.0.0.1:1", "--count", "1"])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"tickcast: error: CA file {missing} (ca_file= or TICKCAST_CLIENT_GATEWAY_CA_FILE): No such file or directory"
    )
    assert "Traceback" not in result.output
