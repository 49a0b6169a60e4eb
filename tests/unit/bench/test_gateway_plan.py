"""``bench.gateway``'s phase planning: a fresh stack per phase and side, each window at one time after its feed."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def planning(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))  # bench is a folder of the repository, not an installed package
    import bench.gateway_plan

    return bench.gateway_plan


def test_each_side_of_an_ab_gets_a_stack_of_its_own(planning: ModuleType) -> None:
    phases = planning.plan(["get", "sse"], rounds=2, with_baseline=True)
    # A stack holds the gateways of one phase's sides: one each, so no side shares a broker with another.
    assert all(len(phase.sides) == 1 for phase in phases), [phase.label for phase in phases]
    runs = [(phase.kind, phase.round, phase.sides[0]) for phase in phases]
    kinds, sides = ("get", "sse_1", "sse_many"), ("new", "baseline")
    expected = {(kind, r, side) for kind in kinds for r in (0, 1) for side in sides}
    assert sorted(runs) == sorted(expected)
    # Alternating: whichever side goes first in a round goes second in the next.
    firsts = [phase.sides[0] for phase in phases if phase.kind == "sse_many"][::2]
    assert firsts == ["baseline", "new"]


def test_one_client_and_many_clients_are_separate_phases(planning: ModuleType) -> None:
    assert [phase.kind for phase in planning.plan(["sse"])] == ["sse_1", "sse_many"]


def test_broker_rows_each_run_once_on_their_own_stack(planning: ModuleType) -> None:
    phases = planning.plan(["broker"], rounds=3, with_baseline=True)
    assert [(phase.kind, phase.sides) for phase in phases] == [(kind, ("new",)) for kind in planning.GROUPS["broker"]]


def test_together_puts_both_sides_on_one_stack(planning: ModuleType) -> None:
    phases = planning.plan(["get"], rounds=2, with_baseline=True, together=True)
    assert [phase.sides for phase in phases] == [("baseline", "new"), ("new", "baseline")]


def test_no_two_phases_write_the_same_result(planning: ModuleType) -> None:
    phases = planning.plan(["get", "sse", "broker"], rounds=2, with_baseline=True)
    places = [
        (planning.result_key(phase.kind, side, phase.round, 2), phase.kind) for phase in phases for side in phase.sides
    ]
    assert len(places) == len(set(places)), places


@pytest.mark.parametrize("setup_s", [0.0, 3.0, 5.0])
def test_every_window_opens_the_same_time_after_its_feed_started(planning: ModuleType, setup_s: float) -> None:
    seconds, warmup, settle = 20.0, 15.0, 8.0
    kinds = planning.KINDS
    leads = {kind: planning.lead_s(kind, seconds, warmup, settle) for kind in kinds}
    at = planning.window_at(None, list(leads.values()))
    assert at >= max(leads.values()) + planning.MIN_SETUP_S
    feed_started = 1000.0
    opened = {
        # set-up ran `setup_s` after the feed's start; then the phase waits, runs its lead-in, opens its window
        kind: feed_started
        + setup_s
        + max(0.0, planning.wait_before_lead(feed_started, feed_started + setup_s, at, lead))
        + lead
        - feed_started
        for kind, lead in leads.items()
    }
    assert set(opened.values()) == {at}, opened


def test_the_default_window_is_the_same_whichever_phases_run(planning: ModuleType) -> None:
    # A GET-only run's own lead-in is 10 s; it still opens its window when a run with SSE phases (15 s) would.
    seconds, warmup, settle = 20.0, 15.0, 8.0
    with_sse = planning.window_at(None, [planning.lead_s(kind, seconds, warmup, settle) for kind in planning.KINDS])
    assert planning.run_window_at(None, seconds, warmup, settle) == with_sse == 20.0


def test_a_late_set_up_says_how_late(planning: ModuleType) -> None:
    # Every symbol reached the gateway 9.5 s after the feed started; a 15 s lead-in for a window at 20 s.
    assert planning.wait_before_lead(1000.0, 1009.5, 20.0, 15.0) == -4.5


def test_a_window_too_early_for_the_lead_in_is_refused(planning: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"no room for a 15\.0 s lead-in"):
        planning.window_at(18.0, [10.0, 15.0])
    with pytest.raises(ValueError, match="unknown phases"):
        planning.plan(["gets"])
