"""The clients file: parsed strictly (errors name file and line), re-read when it changes, a bad reload ignored;
revoked clients' streams closed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from tests.unit.gateway.fakes import make_feed
from tickcast.gateway.auth import MALFORMED, MISSING, UNKNOWN, Clients, ClientsFileError, client_line, parse_clients

TOKEN = "desk-1-token-aaaaaaaaaaaaaaaaaaaaaaaa"
OTHER = "desk-2-token-bbbbbbbbbbbbbbbbbbbbbbbb"


def write_clients(path: Path, lines: list[str]) -> Path:
    """Replace the file as the kubelet updates a Secret volume: a new file swapped in (a new inode)."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    os.replace(fresh, path)
    return path


def test_a_file_of_names_and_digests_is_read_and_tokens_checked(tmp_path: Path) -> None:
    path = write_clients(tmp_path / "clients", ["# trading desks", client_line("desk-1", TOKEN), ""])
    clients = Clients.load(path)
    assert clients.names == {"desk-1"}
    assert clients.check(f"Bearer {TOKEN}".encode()) == "desk-1"
    assert clients.check(f"bearer   {TOKEN}  ".encode()) == "desk-1", "the scheme is case-insensitive"
    assert clients.check(None) is MISSING
    assert clients.check(f"Basic {TOKEN}".encode()) is MALFORMED
    assert clients.check(b"Bearer ") is MALFORMED
    assert clients.check(b"Bearer " + b"x" * 2_000) is MALFORMED
    assert clients.check(f"Bearer {OTHER}".encode()) is UNKNOWN
    assert clients.check(f"Bearer {TOKEN}x".encode()) is UNKNOWN
    assert TOKEN not in path.read_text(), "the file holds digests, never tokens"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"desk-1 {TOKEN}\n", "line 1: want 'NAME SHA256-HEX'"),
        ("# a comment\n\ndesk-1 " + "AB" * 32 + "\n", "line 3: want 'NAME SHA256-HEX'"),
        ("desk 1 " + "ab" * 32 + "\n", "line 1: want 'NAME SHA256-HEX'"),
        ("-desk " + "ab" * 32 + "\n", "line 1: client name must match"),
        (f"{client_line('desk-1', TOKEN)}\n{client_line('desk-1', OTHER)}\n", "line 2: client 'desk-1' named twice"),
        (f"{client_line('a', TOKEN)}\n{client_line('b', TOKEN)}\n", "line 2: the same token digest as client 'a'"),
    ],
)
def test_a_malformed_file_is_one_error_naming_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ClientsFileError) as refused:
        parse_clients(text, "/etc/clients")
    assert str(refused.value).startswith("/etc/clients ") and message in str(refused.value)
    assert TOKEN not in str(refused.value), "a token pasted by mistake must not be echoed"


def test_a_missing_file_names_the_setting_and_the_path(tmp_path: Path) -> None:
    with pytest.raises(ClientsFileError, match=r"TICKCAST_GATEWAY_CLIENTS_FILE .*nope: .*No such file"):
        Clients.load(tmp_path / "nope")


def test_the_file_is_reread_when_it_changes_at_most_once_a_second(tmp_path: Path) -> None:
    path = write_clients(tmp_path / "clients", [client_line("desk-1", TOKEN)])
    clients = Clients.load(path)
    assert not clients.refresh(100.0), "unchanged: nothing to reload"
    write_clients(path, [client_line("desk-2", OTHER)])
    assert not clients.refresh(100.5), "looked at again within a second"
    assert clients.check(f"Bearer {TOKEN}".encode()) == "desk-1"
    generation = clients.generation
    with capture_logs() as logs:
        assert clients.refresh(101.0)
    assert clients.generation == generation + 1
    assert clients.check(f"Bearer {TOKEN}".encode()) is UNKNOWN, "a removed client is refused at once"
    assert clients.check(f"Bearer {OTHER}".encode()) == "desk-2"
    [reloaded] = [e for e in logs if e["event"] == "gateway_clients_reloaded"]
    assert reloaded["added"] == ["desk-2"] and reloaded["removed"] == ["desk-1"]


def test_a_bad_file_on_reload_keeps_the_last_good_one_and_says_so(tmp_path: Path) -> None:
    path = write_clients(tmp_path / "clients", [client_line("desk-1", TOKEN)])
    clients = Clients.load(path)
    write_clients(path, [client_line("desk-1", TOKEN), f"desk-2 {OTHER}"])
    with capture_logs() as logs:
        assert not clients.refresh(10.0)
    assert clients.check(f"Bearer {TOKEN}".encode()) == "desk-1"
    [error] = [e for e in logs if e["event"] == "gateway_clients_file_invalid"]
    assert error["log_level"] == "error" and "line 2" in error["error"] and error["kept"] == 1
    assert OTHER not in str(logs)
    path.unlink()
    with capture_logs() as logs:
        assert not clients.refresh(20.0)
    assert clients.check(f"Bearer {TOKEN}".encode()) == "desk-1", "a vanished file keeps the last good one too"
    assert [e["event"] for e in logs] == ["gateway_clients_file_invalid"]
    with capture_logs() as logs:
        assert not clients.refresh(30.0)
    assert logs == [], "a bad state of the file is reported once, not every second"
    write_clients(path, [client_line("desk-2", OTHER)])
    assert clients.refresh(40.0) and clients.check(f"Bearer {OTHER}".encode()) == "desk-2"


def test_a_revoked_clients_streams_are_closed_and_its_series_forgotten(tmp_path: Path) -> None:
    path = write_clients(tmp_path / "clients", [client_line("desk-1", TOKEN), client_line("desk-2", OTHER)])
    feed = make_feed(gateway_clients_file=path)
    assert feed.clients is not None
    digest = feed.clients.digest_of(f"Bearer {TOKEN}".encode())
    mine = feed.open_stream(None, None, "desk-1", digest).subscription
    theirs = feed.open_stream(None, None, "desk-2", feed.clients.digest_of(f"Bearer {OTHER}".encode())).subscription
    assert 'tickcast_gateway_client_streams{client="desk-1"} 1.0' in generate_latest(feed.metrics.registry).decode()
    write_clients(path, [client_line("desk-2", OTHER)])
    assert feed.refresh_clients(50.0) == 1
    assert mine.dropped == "revoked" and theirs.dropped is None and len(feed.hub) == 1
    exported = generate_latest(feed.metrics.registry).decode()
    assert 'client="desk-1"' not in exported, "a removed client's series must go with it"
    assert 'tickcast_gateway_client_streams{client="desk-2"} 1.0' in exported
    assert 'tickcast_gateway_clients_dropped_total{reason="revoked"} 1.0' in exported


def test_a_changed_token_closes_the_streams_opened_with_the_old_one(tmp_path: Path) -> None:
    path = write_clients(tmp_path / "clients", [client_line("desk-1", TOKEN)])
    feed = make_feed(gateway_clients_file=path)
    assert feed.clients is not None
    old = feed.open_stream(None, None, "desk-1", feed.clients.digest_of(f"Bearer {TOKEN}".encode())).subscription
    write_clients(path, [client_line("desk-1", OTHER)])
    assert feed.refresh_clients(50.0) == 1 and old.dropped == "revoked"
