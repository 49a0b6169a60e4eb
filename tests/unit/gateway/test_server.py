"""What ``tickcast gateway`` sets up for its process before serving: the time slice (if asked) and the collector."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from tickcast.gateway import server
from tickcast.gateway.settings import GatewaySettings


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """What run_gateway asked for, with uvicorn's serving replaced by a record of it."""
    made: list[tuple[str, Any]] = []
    monkeypatch.setattr(server, "request_slice", lambda slice_us: made.append(("slice", slice_us)) or slice_us * 1000)
    monkeypatch.setattr(server, "settle_gc", lambda threshold0, freeze: made.append(("gc", (threshold0, freeze))))
    monkeypatch.setattr(server.sys, "setswitchinterval", lambda interval: made.append(("switch", interval)))
    monkeypatch.setattr(server.uvicorn.Server, "run", lambda self: made.append(("serve", self.config.port)))
    return made


def test_the_slice_is_asked_for_before_serving_when_set(calls: list[tuple[str, Any]]) -> None:
    server.run_gateway(GatewaySettings(gateway_port=35001, gateway_sched_slice_us=300))
    assert calls == [("slice", 300), ("gc", (5_000, True)), ("serve", 35001)]


def test_no_slice_is_asked_for_by_default(calls: list[tuple[str, Any]]) -> None:
    server.run_gateway(GatewaySettings(gateway_port=35002, gateway_gc_freeze=False, gateway_gc_threshold0=0))
    assert calls == [("gc", (0, False)), ("serve", 35002)]


def test_the_gil_switch_interval_is_set_before_serving_when_asked(calls: list[tuple[str, Any]]) -> None:
    server.run_gateway(GatewaySettings(gateway_port=35004, gateway_switch_interval_us=500))
    assert calls == [("gc", (5_000, True)), ("switch", 0.0005), ("serve", 35004)]


def test_a_refused_slice_is_logged_and_the_gateway_serves_anyway(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[int] = []

    def refuse(slice_us: int) -> int:
        raise server.SliceUnavailable(1, "sched_setattr refused")

    monkeypatch.setattr(server, "request_slice", refuse)
    monkeypatch.setattr(server, "settle_gc", lambda threshold0, freeze: None)
    monkeypatch.setattr(server.uvicorn.Server, "run", lambda self: served.append(self.config.port))
    server.run_gateway(GatewaySettings(gateway_port=35003, gateway_sched_slice_us=300))
    assert served == [35003]


def test_settle_gc_freezes_what_is_alive_and_raises_the_young_threshold() -> None:
    from tickcast.gateway.stalls import settle_gc

    before = gc.get_threshold()
    try:
        settle_gc(12_345, freeze=True)
        assert gc.get_threshold() == (12_345, *before[1:])
        assert gc.get_freeze_count() > 0, "nothing was frozen"
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
