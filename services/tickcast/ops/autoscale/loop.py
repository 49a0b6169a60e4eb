"""The autoscaler's control loop: read the lag, decide, and ask the local supervisor for the decided count."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog
from confluent_kafka import KafkaException

from tickcast.ops.autoscale.policy import AutoscaleConfig, Decision, ScalerState, decide
from tickcast.ops.autoscale.rates import LagSample, processing_rate, recent_samples
from tickcast.ops.control import SupervisorNotRunning, read_status, request_scale, supervisor_running
from tickcast.ops.lag import LagReport

log = structlog.get_logger("tickcast.autoscale")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def run_autoscaler(
    *,
    config: AutoscaleConfig,
    read_lag: Callable[[], LagReport],
    state_dir: Path,
    partitions: int,
    stop_event: threading.Event,
    interval_s: float = 10.0,
    dry_run: bool = False,
    emit: Callable[[Decision], None] = lambda decision: None,
    clock: Callable[[], datetime] = _utc_now,
    scale_timeout_s: float = 180.0,
) -> ScalerState:
    """Every ``interval_s``: read the lag, decide, and ask the supervisor for the decided count, until stopped.

    The current count is the supervisor's desired count (it replaces crashed workers itself). With
    ``dry_run`` nothing is changed: decisions are only emitted, against the supervisor's count if one runs,
    else against a simulated group that starts at 1 worker and follows the decisions. Returns the last state.
    """
    history: list[LagSample] = []
    state = ScalerState()
    simulated = 1
    window_s = config.dynamic.trend_window_s
    while not stop_event.is_set():
        started = time.monotonic()
        try:
            report = read_lag()
        except (KafkaException, LookupError, TimeoutError) as exc:
            log.warning("lag_unavailable", error=str(exc))
            stop_event.wait(interval_s)
            continue
        now = clock()
        sample = LagSample(now, report.total_lag, report.total_position)
        rate = processing_rate([*history, sample], window_s)
        status = read_status(state_dir) if supervisor_running(state_dir) else None
        if status is None and not dry_run:
            log.warning("no_supervisor", state_dir=str(state_dir), hint="start one with `tickcast supervise`")
            stop_event.wait(interval_s)
            continue
        current = status.desired if status is not None else simulated
        decision = decide(
            now=now,
            lag=report.total_lag,
            history=history,
            processing_rate=rate,
            current=current,
            partitions=partitions,
            config=config,
            state=state,
        )
        emit(decision)
        log.info("autoscale_decision", action=decision.action, desired=decision.desired, reason=decision.reason)
        if status is None:
            simulated, state = decision.desired, decision.state
        elif not dry_run:
            state = decision.state
            if decision.desired != current:
                _apply(state_dir, decision.desired, scale_timeout_s, stop_event)
                # Cooldowns run from when the new workers run, not from the request: starting them takes
                # a while, and the rebalance after it briefly stalls consumption.
                state = ScalerState(last_change=clock())
        # A dry run against a real supervisor changes nothing, so its cooldowns must not start either.
        history = recent_samples([*history, sample], window_s)
        stop_event.wait(max(0.0, interval_s - (time.monotonic() - started)))
    return state


def _apply(state_dir: Path, workers: int, timeout_s: float, stop_event: threading.Event) -> None:
    try:
        status = request_scale(state_dir, workers, timeout_s=timeout_s, cancel=stop_event)
        log.info("scaled", workers=workers, status=status.describe())
    except (TimeoutError, InterruptedError) as exc:
        # The request stands and the supervisor keeps working on it; the next decision sees its count.
        log.warning("scale_slow", workers=workers, error=str(exc))
    except SupervisorNotRunning as exc:
        log.error("scale_failed", workers=workers, error=str(exc))
