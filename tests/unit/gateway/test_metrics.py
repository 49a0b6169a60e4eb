"""The gateway's labelled counters export every label value they can take from the start, at 0."""

from __future__ import annotations

from pathlib import Path

from tests.unit.gateway.fakes import make_feed
from tests.unit.gateway.test_auth import OTHER, TOKEN, write_clients
from tickcast.gateway.auth import client_line
from tickcast.gateway.hub import DropReason


def test_every_drop_reason_is_exported_at_0_before_any_client_is_dropped() -> None:
    # A series that first appears at 1 has no earlier sample: rate() and increase() read no increase, and an
    # alert on drops misses the first ones.
    registry = make_feed().metrics.registry
    reasons = (DropReason.SLOW, DropReason.REVOKED, DropReason.GONE, DropReason.WRITE_FAILED)
    found = {r: registry.get_sample_value("tickcast_gateway_clients_dropped_total", {"reason": r}) for r in reasons}
    assert found == dict.fromkeys(reasons, 0.0)


def test_every_client_of_the_file_has_its_request_count_at_0_before_its_first_request(tmp_path: Path) -> None:
    path = write_clients(tmp_path / "clients", [client_line("desk-1", TOKEN)])
    feed = make_feed(gateway_clients_file=path)
    registry = feed.metrics.registry

    def requests(client: str) -> float | None:
        return registry.get_sample_value("tickcast_gateway_client_requests_total", {"client": client})

    assert requests("desk-1") == 0
    write_clients(path, [client_line("desk-1", TOKEN), client_line("desk-2", OTHER)])
    assert feed.refresh_clients(50.0) == 0
    assert (requests("desk-1"), requests("desk-2")) == (0, 0), "a client added to the file starts at 0 too"
