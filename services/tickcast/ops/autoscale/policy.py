"""The decision: how many workers the lag, its trend, the processing rate and the schedule call for, and why.

The rules are explained in :mod:`tickcast.ops.autoscale`; :func:`decide` is pure (no clock, no I/O).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tickcast.ops.autoscale.errors import ConfigError
from tickcast.ops.autoscale.rates import LagSample, recent_samples
from tickcast.ops.autoscale.schedule import Bounds, Schedule

# Guards ceil() against float noise: 2.1 / 0.7 is 3.0000000000000004, which must stay 3 workers.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class DynamicPolicy:
    """Parameters of the lag-driven policy (the rules are in :mod:`tickcast.ops.autoscale`).

    >>> DynamicPolicy().per_worker_rate, DynamicPolicy().scale_down_cooldown_s
    (500.0, 300.0)
    >>> DynamicPolicy(target_utilization=0.95)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tickcast.ops.autoscale.errors.ConfigError: need 0 < scale_down_utilization (0.5) < target_utilization (0.95) < ...
    """

    per_worker_rate: float = 500.0
    drain_target_s: float = 60.0
    target_utilization: float = 0.7
    scale_up_utilization: float = 0.9
    scale_down_utilization: float = 0.5
    scale_up_cooldown_s: float = 60.0
    scale_down_cooldown_s: float = 300.0
    max_step_up: int = 4
    max_step_down: int = 2
    trend_window_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.scale_down_utilization < self.target_utilization < self.scale_up_utilization:
            raise ConfigError(
                f"need 0 < scale_down_utilization ({self.scale_down_utilization}) < target_utilization "
                f"({self.target_utilization}) < scale_up_utilization ({self.scale_up_utilization})"
            )
        positive = ("per_worker_rate", "drain_target_s", "trend_window_s", "max_step_up", "max_step_down")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("scale_up_cooldown_s", "scale_down_cooldown_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)!r}")


@dataclass(frozen=True, slots=True)
class AutoscaleConfig:
    """Both policies plus the operator's overrides (``--min``/``--max`` replace the schedule's bounds).

    >>> AutoscaleConfig().schedule.windows, AutoscaleConfig().max_workers
    ((), None)
    """

    dynamic: DynamicPolicy = field(default_factory=DynamicPolicy)
    schedule: Schedule = field(default_factory=Schedule)
    min_workers: int | None = None
    max_workers: int | None = None

    def with_overrides(
        self, min_workers: int | None = None, max_workers: int | None = None, **dynamic: Any
    ) -> AutoscaleConfig:
        """A copy with ``--min``/``--max`` and any :class:`DynamicPolicy` fields (None = keep) replaced.

        >>> c = AutoscaleConfig().with_overrides(max_workers=3, scale_up_cooldown_s=2.0, drain_target_s=None)
        >>> c.max_workers, c.dynamic.scale_up_cooldown_s, c.dynamic.drain_target_s
        (3, 2.0, 60.0)
        """
        if min_workers is not None and min_workers < 1:
            raise ConfigError(f"--min must be at least 1, got {min_workers}")
        if max_workers is not None and max_workers < max(1, min_workers or 1):
            raise ConfigError(f"--max must be at least 1 and at least --min, got {max_workers}")
        changes = {k: v for k, v in dynamic.items() if v is not None}
        try:
            policy = replace(self.dynamic, **changes)
        except TypeError as exc:
            raise ConfigError(str(exc)) from exc
        return replace(
            self,
            dynamic=policy,
            min_workers=self.min_workers if min_workers is None else min_workers,
            max_workers=self.max_workers if max_workers is None else max_workers,
        )


@dataclass(frozen=True, slots=True)
class ScalerState:
    """What a decision must remember from earlier ones: when the worker count last changed.

    >>> ScalerState().last_change is None
    True
    """

    last_change: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Desired worker count and why; ``state`` is what the next decision needs once this one is carried out."""

    at: datetime
    current: int
    desired: int
    reason: str
    need: float
    lag: int
    processing_rate: float
    incoming_rate: float
    bounds: Bounds
    state: ScalerState

    @property
    def action(self) -> str:
        return "up" if self.desired > self.current else "down" if self.desired < self.current else "hold"


def _ceil(value: float) -> int:
    return math.ceil(value - _EPSILON)


def decide(
    *,
    now: datetime,
    lag: int,
    history: Sequence[LagSample],
    processing_rate: float,
    current: int,
    partitions: int,
    config: AutoscaleConfig,
    state: ScalerState,
) -> Decision:
    """Desired worker count for this tick of the control loop; ``history`` holds earlier samples, oldest first.

    >>> from datetime import UTC, timedelta
    >>> from tickcast.ops.autoscale.config import DEFAULT_CONFIG
    >>> now = datetime(2024, 3, 9, 12, tzinfo=UTC)  # a Saturday: no window, bounds [1, partitions]
    >>> minute_ago = LagSample(now - timedelta(minutes=1), lag=30_000, consumed=0)
    >>> d = decide(now=now, lag=60_000, history=[minute_ago], processing_rate=500.0, current=1, partitions=8,
    ...            config=DEFAULT_CONFIG, state=ScalerState())
    >>> d.action, d.desired
    ('up', 5)
    >>> print(d.reason)  # doctest: +NORMALIZE_WHITESPACE
    scale up 1 -> 5: need 4.00 workers (incoming ~1000/s + lag 60000 over 60s = 2000/s at 500/s per worker),
    utilisation 4.00 > 0.90; step limit +4 (wanted 6)
    """
    policy = config.dynamic
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    samples = recent_samples(
        [*history, LagSample(now, lag, history[-1].consumed if history else 0)], policy.trend_window_s
    )
    span = (now - samples[0].at).total_seconds()
    notes: list[str] = []
    # Arrivals are what was consumed plus what the lag grew by. The caller measures the processing rate between
    # these same two samples, so the lag's change must be too: then a commit (a step that moves ticks from lag
    # to consumed) cancels out. A least-squares slope of the lag did not: after a burst, with the backlog
    # cleared early in the window, it read 43/s of arrivals into a stopped feed. A change over a few seconds is
    # mostly noise, and it is multiplied straight into the need; only trust it once it spans half the window.
    if span >= policy.trend_window_s / 2:
        slope = (lag - samples[0].lag) / span
    else:
        slope = 0.0
        if history:
            notes.append(f"lag trend not used yet ({span:.0f}s of history, needs {policy.trend_window_s / 2:.0f}s)")
    incoming = max(0.0, processing_rate + slope)
    need = (incoming + lag / policy.drain_target_s) / policy.per_worker_rate
    since = (now - state.last_change).total_seconds() if state.last_change is not None else math.inf
    why_need = (
        f"need {need:.2f} workers (incoming ~{incoming:.0f}/s + lag {lag} over {policy.drain_target_s:.0f}s"
        f" = {need * policy.per_worker_rate:.0f}/s at {policy.per_worker_rate:.0f}/s per worker)"
    )
    wanted = max(1, _ceil(need / policy.target_utilization))

    # The dynamic policy proposes a count and explains it; bounds and the partition cap are applied after.
    if current < 1:
        proposed, why = wanted, f"no workers running; {why_need}"
    elif not history:
        proposed, why = current, f"first sample, no trend or rate yet (lag {lag})"
    else:
        utilisation = need / current
        if utilisation > policy.scale_up_utilization and wanted > current:
            if since < policy.scale_up_cooldown_s:
                proposed = current
                why = (
                    f"would scale up to {wanted} ({why_need}) but the last change was {since:.0f}s ago, "
                    f"scale-up cooldown {policy.scale_up_cooldown_s:.0f}s"
                )
            else:
                proposed = min(wanted, current + policy.max_step_up)
                why = f"{why_need}, utilisation {utilisation:.2f} > {policy.scale_up_utilization:.2f}"
                if proposed < wanted:
                    notes.append(f"step limit +{policy.max_step_up} (wanted {wanted})")
        elif utilisation < policy.scale_down_utilization and wanted < current:
            if since < policy.scale_down_cooldown_s:
                proposed = current
                why = (
                    f"would scale down to {wanted} ({why_need}) but the last change was {since:.0f}s ago, "
                    f"scale-down cooldown {policy.scale_down_cooldown_s:.0f}s"
                )
            else:
                proposed = max(wanted, current - policy.max_step_down)
                why = f"{why_need}, utilisation {utilisation:.2f} < {policy.scale_down_utilization:.2f}"
                if proposed > wanted:
                    notes.append(f"step limit -{policy.max_step_down} (wanted {wanted})")
        elif utilisation < policy.scale_down_utilization:
            proposed = current
            why = (
                f"{why_need}, utilisation {utilisation:.2f} < {policy.scale_down_utilization:.2f} but {current} "
                f"is already the fewest that stays under {policy.target_utilization:.2f}"
            )
        else:
            proposed = current
            why = (
                f"{why_need}, utilisation {utilisation:.2f} within "
                f"[{policy.scale_down_utilization:.2f}, {policy.scale_up_utilization:.2f}]"
            )

    scheduled = config.schedule.bounds_at(now)
    low, high = scheduled.min_workers, scheduled.max_workers
    low_from = high_from = scheduled.source
    if config.min_workers is not None:
        low, low_from = config.min_workers, "--min"
    if config.max_workers is not None:
        high, high_from = config.max_workers, "--max"
    desired = proposed
    if desired < low:
        desired = low
        notes.append(f"raised to min {low} of {low_from}")
    # Ceilings are applied after floors, so they win: a budget or the partition count is a hard limit.
    if high is not None and desired > high:
        desired = high
        notes.append(f"capped at max {high} of {high_from}")
    if desired > partitions:
        desired = partitions
        notes.append(f"capped at {partitions} partitions (more workers than partitions would idle)")
    desired = max(1, desired)

    if desired > current:
        verb = f"scale up {current} -> {desired}"
    elif desired < current:
        verb = f"scale down {current} -> {desired}"
    else:
        verb = f"hold at {current}"
    reason = "; ".join([f"{verb}: {why}", *notes])
    return Decision(
        at=now,
        current=current,
        desired=desired,
        reason=reason,
        need=need,
        lag=lag,
        processing_rate=processing_rate,
        incoming_rate=incoming,
        bounds=Bounds(low, high, scheduled.source),
        state=ScalerState(last_change=now) if desired != current else state,
    )


def format_decision(decision: Decision) -> str:
    """One line for the log or the terminal: time, action, counts, lag, rate, reason.

    >>> from datetime import UTC
    >>> d = Decision(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), 2, 2, "hold at 2: fine", 1.2, 40, 600.0, 610.0,
    ...              Bounds(1, None, "outside the windows"), ScalerState())
    >>> format_decision(d)
    '2024-01-02T03:04:05+00:00 hold 2->2 lag=40 processing=600/s: hold at 2: fine'
    """
    return (
        f"{decision.at.isoformat(timespec='seconds')} {decision.action} {decision.current}->{decision.desired} "
        f"lag={decision.lag} processing={decision.processing_rate:.0f}/s: {decision.reason}"
    )
