"""``tickcast gateway-client``: a token shown once and its clients-file line; and ``tickcast gateway`` refusing a
malformed clients file with one line, before it waits for the broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.gateway.test_auth import OTHER, TOKEN, write_clients
from tickcast.cli import app as cli
from tickcast.gateway.auth import client_line, parse_clients


def test_the_cli_prints_the_token_once_on_stderr_and_the_line_on_stdout() -> None:
    result = CliRunner().invoke(cli, ["gateway-client", "desk-7"])
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    token = result.stderr.strip().rsplit(": ", 1)[1]
    assert len(token) >= 43 and token not in result.stdout
    assert parse_clients(line, "stdout") == {bytes.fromhex(line.split()[1]): "desk-7"}
    assert line == client_line("desk-7", token)
    bad = CliRunner().invoke(cli, ["gateway-client", "desk 7"])
    assert bad.exit_code == 2 and "client name 'desk 7' must match" in bad.output


def test_the_gateway_stops_at_start_on_a_malformed_file_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_clients(tmp_path / "clients", [client_line("desk-1", TOKEN), f"desk-2 {OTHER}"])
    monkeypatch.setenv("TICKCAST_GATEWAY_CLIENTS_FILE", str(path))
    monkeypatch.setenv("TICKCAST_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # never reached: the file stops it first
    result = CliRunner().invoke(cli, ["gateway", "--port", "0"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"tickcast: error: {path} line 2: want 'NAME SHA256-HEX' (64 lowercase hex digits: the token's digest,"
        " never the token)"
    )
    assert "Traceback" not in result.output and OTHER not in result.output
