"""How many predictor workers to run: a pure decision from the lag, its trend, the processing rate and the clock.

Two policies compose, and every :class:`Decision` says why in words.

Dynamic (size the group to the work):

* ``incoming ≈ processing rate + lag slope`` (ticks/s; the slope is a least-squares fit over ``trend_window_s``),
* ``need = (incoming + lag / drain_target_s) / per_worker_rate`` workers, i.e. keep up with the feed *and* clear
  the backlog within ``drain_target_s``,
* utilisation ``u = need / current``. Above ``scale_up_utilization`` scale up, below ``scale_down_utilization``
  scale down, in both cases to ``ceil(need / target_utilization)``; in between (the hysteresis band) hold. As
  ``scale_down < target < scale_up``, a group just resized lands inside the band, so noise does not flap it.
* at most ``max_step_up`` / ``max_step_down`` workers per decision; no scale-up within ``scale_up_cooldown_s``
  of the last change and no scale-down within the longer ``scale_down_cooldown_s`` (a rebalance pauses
  consumption for a few seconds, which must not read as "need more").

Scheduled (calendar bounds): windows of local time in one zone, on chosen weekdays, each with a ``min`` and
optional ``max`` worker count; the first window that contains the moment applies, otherwise ``[outside]``.

Result: ``clamp(dynamic, window min/max)``, then the operator's ``--min``/``--max`` (they replace the window's
bounds), then at most the partition count (a group never uses more workers than partitions: the extra ones
idle) and at least 1. Ceilings win over floors. Bounds apply at once, cooldowns only gate the dynamic part.

Config file (TOML, read with the standard library; every key optional; this text is the built-in default)::

    timezone = "America/New_York"        # IANA zone of the window times

    [dynamic]
    per_worker_rate = 500.0              # ticks/s one worker sustains; measure with `tickcast lag --watch`
    drain_target_s = 60.0                # clear a backlog within this long
    target_utilization = 0.7             # size the group so each worker runs at this share of its rate
    scale_up_utilization = 0.9           # scale up above this ...
    scale_down_utilization = 0.5         # ... down below this; hold in between
    scale_up_cooldown_s = 60.0
    scale_down_cooldown_s = 300.0
    max_step_up = 4
    max_step_down = 2                    # 8 -> 1 after a burst takes 4 cooldowns, not 7
    trend_window_s = 60.0                # lag slope and processing rate are measured over this long

    [outside]                            # bounds when no window applies (nights, weekends)
    min = 1                              # no max: up to the partition count

    [[windows]]
    name = "pre-open warm-up"
    start = "09:00"                      # inclusive, local time
    end = "09:30"                        # exclusive; must be after start (split windows that cross midnight)
    min = 4
    days = ["mon", "tue", "wed", "thu", "fri"]   # the default: weekdays; market holidays are not known

    [[windows]]
    name = "market hours"
    start = "09:30"
    end = "16:00"
    min = 4
    max = 8

    [[windows]]
    name = "after hours"
    start = "16:00"
    end = "20:00"
    min = 1
    max = 2
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS = frozenset(range(5))
# Guards ceil() against float noise: 2.1 / 0.7 is 3.0000000000000004, which must stay 3 workers.
_EPSILON = 1e-9


class ConfigError(ValueError):
    """An autoscale config file or value that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class DynamicPolicy:
    """Parameters of the lag-driven policy (see the module docstring for the rules).

    >>> DynamicPolicy().per_worker_rate, DynamicPolicy().scale_down_cooldown_s
    (500.0, 300.0)
    >>> DynamicPolicy(target_utilization=0.95)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tickcast.ops.autoscale.ConfigError: need 0 < scale_down_utilization (0.5) < target_utilization (0.95) < ...
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
class Window:
    """Worker bounds for a stretch of local time on some days of the week (Monday = 0).

    >>> w = Window("market hours", time(9, 30), time(16), min_workers=4, max_workers=8)
    >>> mon_open, mon_close, saturday = datetime(2024, 3, 4, 9, 30), datetime(2024, 3, 4, 16), datetime(2024, 3, 9, 10)
    >>> w.contains(mon_open), w.contains(mon_close), w.contains(saturday)
    (True, False, False)
    """

    name: str
    start: time
    end: time
    min_workers: int = 1
    max_workers: int | None = None
    days: frozenset[int] = WEEKDAYS

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ConfigError(f"window {self.name!r}: end {self.end} must be after start {self.start}")
        if self.min_workers < 0 or (self.max_workers is not None and self.max_workers < max(1, self.min_workers)):
            raise ConfigError(f"window {self.name!r}: need 0 <= min <= max and max >= 1")

    def contains(self, local: datetime) -> bool:
        """Whether a local (wall-clock) time falls in this window."""
        return local.weekday() in self.days and self.start <= local.time() < self.end


@dataclass(frozen=True, slots=True)
class Bounds:
    """Worker bounds in force and where they come from."""

    min_workers: int
    max_workers: int | None
    source: str


@dataclass(frozen=True, slots=True)
class Schedule:
    """Calendar windows in one time zone; the first window containing a moment gives its bounds.

    >>> from datetime import UTC
    >>> s = DEFAULT_CONFIG.schedule
    >>> s.bounds_at(datetime(2024, 3, 4, 14, 45, tzinfo=UTC))  # a Monday, 09:45 in New York
    Bounds(min_workers=4, max_workers=8, source="window 'market hours'")
    >>> s.bounds_at(datetime(2024, 3, 9, 14, 45, tzinfo=UTC)).source  # Saturday
    'outside the windows'
    """

    timezone: str = "America/New_York"
    windows: tuple[Window, ...] = ()
    outside_min: int = 1
    outside_max: int | None = None

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {self.timezone!r}") from exc

    def bounds_at(self, at: datetime) -> Bounds:
        """Bounds in force at an aware moment."""
        if at.tzinfo is None:
            raise ValueError("autoscale needs aware datetimes (a naive time has no place on the schedule)")
        local = at.astimezone(ZoneInfo(self.timezone))
        for window in self.windows:
            if window.contains(local):
                return Bounds(window.min_workers, window.max_workers, f"window {window.name!r}")
        return Bounds(self.outside_min, self.outside_max, "outside the windows")


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

        >>> c = DEFAULT_CONFIG.with_overrides(max_workers=3, scale_up_cooldown_s=2.0, drain_target_s=None)
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
class LagSample:
    """One reading of the group: total lag, and the sum of its positions (grows by one per processed tick)."""

    at: datetime
    lag: int
    consumed: int


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


def recent_samples(samples: Sequence[LagSample], window_s: float) -> list[LagSample]:
    """The samples of the last ``window_s`` plus the newest one before it (oldest first).

    The older anchor makes rates cover the whole window even when readings are irregular: the control loop
    pauses while workers start, and the seconds after a gap must not make a busy group look idle.

    >>> from datetime import UTC, timedelta
    >>> t = datetime(2024, 1, 1, tzinfo=UTC)
    >>> [s.lag for s in recent_samples([LagSample(t + timedelta(seconds=s), s, 0) for s in (0, 5, 30, 31)], 10)]
    [5, 30, 31]
    >>> [s.lag for s in recent_samples([LagSample(t + timedelta(seconds=s), s, 0) for s in (0, 5, 10)], 10)]
    [0, 5, 10]
    """
    if not samples:
        return []
    newest = samples[-1].at
    first = next(i for i, s in enumerate(samples) if (newest - s.at).total_seconds() <= window_s)
    return list(samples[max(0, first - 1) :])


def lag_slope(samples: Sequence[LagSample], window_s: float) -> float:
    """Least-squares slope of the lag (ticks/s) over :func:`recent_samples`; 0 with fewer than two samples.

    >>> from datetime import UTC
    >>> t = [datetime(2024, 1, 1, 0, 0, s, tzinfo=UTC) for s in (0, 10, 20)]
    >>> lag_slope([LagSample(t[0], 100, 0), LagSample(t[1], 300, 0), LagSample(t[2], 500, 0)], 60)
    20.0
    """
    recent = recent_samples(samples, window_s)
    if len(recent) < 2:
        return 0.0
    xs = [(s.at - recent[0].at).total_seconds() for s in recent]
    mean_x = sum(xs) / len(xs)
    mean_y = sum(s.lag for s in recent) / len(recent)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (s.lag - mean_y) for x, s in zip(xs, recent, strict=True)) / spread


def processing_rate(samples: Sequence[LagSample], window_s: float) -> float:
    """Ticks/s the group processed over :func:`recent_samples` (from its positions); 0 with fewer than two.

    >>> from datetime import UTC
    >>> t = [datetime(2024, 1, 1, 0, 0, s, tzinfo=UTC) for s in (0, 5, 10)]
    >>> processing_rate([LagSample(t[0], 0, 1000), LagSample(t[1], 0, 1100), LagSample(t[2], 0, 3000)], 60)
    200.0
    """
    recent = recent_samples(samples, window_s)
    if len(recent) < 2:
        return 0.0
    elapsed = (recent[-1].at - recent[0].at).total_seconds()
    # Positions only move back if offsets are reset by hand; that is not negative work.
    return max(0.0, (recent[-1].consumed - recent[0].consumed) / elapsed) if elapsed > 0 else 0.0


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
    # A slope fitted to a few seconds of lag is mostly noise (Faust commits offsets in steps), and it is
    # multiplied straight into the need; only trust it once it spans half the window.
    if span >= policy.trend_window_s / 2:
        slope = lag_slope(samples, policy.trend_window_s)
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


_DYNAMIC_KEYS = frozenset(DynamicPolicy.__dataclass_fields__)
_TOP_KEYS = frozenset({"timezone", "dynamic", "outside", "windows"})


def _time(value: Any, where: str) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f'{where}: expected a time like "09:30", got {value!r}')


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    return value


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _unknown(data: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}")


def parse_config(data: Mapping[str, Any], source: str = "config") -> AutoscaleConfig:
    """An :class:`AutoscaleConfig` from parsed TOML; every error names ``source`` and the key.

    >>> parse_config({"windows": [{"name": "w", "start": "10:00", "end": "11:00", "mn": 2}]}, "a.toml")
    Traceback (most recent call last):
    ...
    tickcast.ops.autoscale.ConfigError: a.toml: windows[0]: unknown key(s) mn; allowed: days, end, max, min, name, start
    >>> parse_config({}).schedule.windows
    ()
    """
    try:
        _unknown(data, _TOP_KEYS, "top level")
        dynamic_data = data.get("dynamic", {})
        _unknown(dynamic_data, _DYNAMIC_KEYS, "[dynamic]")
        fields = DynamicPolicy.__dataclass_fields__
        values: dict[str, Any] = {
            k: _int(v, f"[dynamic] {k}") if fields[k].type == "int" else _float(v, f"[dynamic] {k}")
            for k, v in dynamic_data.items()
        }
        dynamic = DynamicPolicy(**values)
        outside = data.get("outside", {})
        _unknown(outside, frozenset({"min", "max"}), "[outside]")
        windows = []
        for i, raw in enumerate(data.get("windows", [])):
            where = f"windows[{i}]"
            _unknown(raw, frozenset({"name", "start", "end", "min", "max", "days"}), where)
            days = raw.get("days", list(DAY_NAMES[:5]))
            bad_days = [d for d in days if str(d).lower() not in DAY_NAMES]
            if bad_days or not days:
                raise ConfigError(f"{where}: days must be a non-empty list of {', '.join(DAY_NAMES)}; got {days!r}")
            windows.append(
                Window(
                    name=str(raw.get("name", f"window {i}")),
                    start=_time(raw.get("start"), f"{where} start"),
                    end=_time(raw.get("end"), f"{where} end"),
                    min_workers=_int(raw.get("min", 1), f"{where} min"),
                    max_workers=_int(raw["max"], f"{where} max") if "max" in raw else None,
                    days=frozenset(DAY_NAMES.index(str(d).lower()) for d in days),
                )
            )
        out_min = _int(outside.get("min", 1), "[outside] min")
        out_max = _int(outside["max"], "[outside] max") if "max" in outside else None
        if out_min < 0 or (out_max is not None and out_max < max(1, out_min)):
            raise ConfigError("[outside]: need 0 <= min <= max and max >= 1")
        schedule = Schedule(str(data.get("timezone", "America/New_York")), tuple(windows), out_min, out_max)
        return AutoscaleConfig(dynamic=dynamic, schedule=schedule)
    except (ConfigError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def load_config(path: Path | None) -> AutoscaleConfig:
    """The config in a TOML file, or the built-in default (the example in this module's docstring) for None.

    >>> load_config(None) is DEFAULT_CONFIG
    True
    """
    if path is None:
        return DEFAULT_CONFIG
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, str(path))


def _default_config_text() -> str:
    doc = __doc__ or ""
    start = doc.index("::\n") + 3
    return "\n".join(line[4:] for line in doc[start:].splitlines()).strip() + "\n"


#: The config-file example above, parsed: what ``tickcast autoscale`` uses without ``--schedule``.
DEFAULT_CONFIG_TEXT = _default_config_text()
DEFAULT_CONFIG = parse_config(tomllib.loads(DEFAULT_CONFIG_TEXT), "built-in default")
