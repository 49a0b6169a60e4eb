"""The autoscaler's control loop on scripted lag readings, with and without a supervisor."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tickcast.ops.autoscale.loop import run_autoscaler
from tickcast.ops.autoscale.policy import AutoscaleConfig, Decision, DynamicPolicy
from tickcast.ops.autoscale.schedule import Schedule
from tickcast.ops.control import STATUS_FILE, hold_state_dir, read_desired, write_json_atomic
from tickcast.ops.lag import LagReport, build_report
from tickcast.ops.status import SupervisorStatus

START = datetime(2024, 3, 9, 12, tzinfo=UTC)  # a Saturday
FAST = AutoscaleConfig(
    dynamic=DynamicPolicy(per_worker_rate=100, drain_target_s=10, trend_window_s=6, scale_down_cooldown_s=5),
    schedule=Schedule(windows=()),
)


def report(consumed: int, lag: int) -> LagReport:
    """One partition whose group has processed ``consumed`` records and is ``lag`` behind."""
    return build_report("ticks", "g", {0: consumed}, {0: (0, consumed + lag)}, {})


def drive(readings: list[tuple[float, int, int]], state_dir: Path, dry_run: bool = True) -> list[Decision]:
    """Run the loop over ``(seconds after START, consumed, lag)`` readings, one decision each."""
    reports: Iterator[tuple[float, int, int]] = iter(readings)
    clock_at = [START]
    stop = threading.Event()
    decisions: list[Decision] = []

    def read_lag() -> LagReport:
        seconds, consumed, lag = next(reports)
        clock_at[0] = START + timedelta(seconds=seconds)
        return report(consumed, lag)

    def emit(decision: Decision) -> None:
        decisions.append(decision)
        if len(decisions) == len(readings):
            stop.set()

    run_autoscaler(
        config=FAST,
        read_lag=read_lag,
        state_dir=state_dir,
        partitions=8,
        stop_event=stop,
        interval_s=0,
        dry_run=dry_run,
        emit=emit,
        clock=lambda: clock_at[0],
    )
    return decisions


def test_dry_run_without_a_supervisor_simulates_a_group_that_follows_the_decisions(tmp_path: Path) -> None:
    # 300 ticks/s arrive from t=2; one worker at 100/s falls behind, then the burst stops at t=12.
    readings = [(0, 0, 0), (1, 0, 0), (2, 100, 200), (3, 200, 400), (4, 300, 600), (5, 400, 800)]
    readings += [(t, 400 + 200 * (t - 5), max(0, 800 - 150 * (t - 5))) for t in range(6, 14)]
    readings += [(t, 2400, 0) for t in range(14, 30)]
    decisions = drive(readings, tmp_path)
    assert [d.current for d in decisions[1:]] == [d.desired for d in decisions[:-1]], "the simulation drifted"
    actions = [d.action for d in decisions if d.action != "hold"]
    assert actions[0] == "up" and actions[-1] == "down" and decisions[-1].desired == 1, [d.reason for d in decisions]
    assert "up" not in actions[actions.index("down") :], "scaled up again after the burst"


def test_a_gap_in_the_readings_does_not_make_a_busy_group_look_idle(tmp_path: Path) -> None:
    # 250 ticks/s processed, then 16 s without readings (the loop waited for new workers), then the rebalance
    # stalls consumption while the lag grows: the rate must still cover a whole window, not the stalled seconds.
    readings = [(t, 250 * t, 100) for t in range(0, 7)] + [(22, 5500, 100), (23, 5500, 350), (24, 5500, 600)]
    decisions = drive(readings, tmp_path)
    after_gap = decisions[-3:]
    assert all(d.processing_rate > 200 for d in after_gap), [d.reason for d in after_gap]
    assert all(d.incoming_rate > 200 for d in after_gap), [d.reason for d in after_gap]


def test_without_a_supervisor_the_loop_only_waits(tmp_path: Path) -> None:
    calls = [0]
    stop = threading.Event()

    def read_lag() -> LagReport:
        calls[0] += 1
        if calls[0] == 3:
            stop.set()
        return report(0, 0)

    emitted: list[Decision] = []
    run_autoscaler(
        config=FAST,
        read_lag=read_lag,
        state_dir=tmp_path,
        partitions=8,
        stop_event=stop,
        interval_s=0,
        emit=emitted.append,
    )
    assert calls[0] == 3 and emitted == []


def test_a_decision_becomes_a_request_to_the_running_supervisor(tmp_path: Path) -> None:
    idle = SupervisorStatus(1, "running", "t", 1, None, 1, 1, 0, ())
    with hold_state_dir(tmp_path):  # stands in for `tickcast supervise`, which never answers the request here
        write_json_atomic(tmp_path / STATUS_FILE, idle.to_dict())
        decisions = drive([(0, 0, 0), (10, 1000, 5000)], tmp_path, dry_run=False)
        assert [d.action for d in decisions] == ["hold", "up"], [d.reason for d in decisions]
        assert decisions[-1].current == 1 and decisions[-1].desired == 5
        desired = read_desired(tmp_path)
        assert desired is not None and desired[0] == 5, "the supervisor was not asked for the decided count"


def test_a_dry_run_beside_a_supervisor_changes_nothing(tmp_path: Path) -> None:
    idle = SupervisorStatus(1, "running", "t", 1, None, 1, 1, 0, ())
    with hold_state_dir(tmp_path):
        write_json_atomic(tmp_path / STATUS_FILE, idle.to_dict())
        decisions = drive([(0, 0, 0), (10, 1000, 5000), (20, 2000, 10_000)], tmp_path, dry_run=True)
    assert [d.current for d in decisions] == [1, 1, 1], "a dry run followed its own decisions, not the supervisor"
    assert decisions[-1].action == "up" and read_desired(tmp_path) is None
