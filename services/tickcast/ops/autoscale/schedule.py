"""Calendar bounds: windows of local time in one zone, on chosen weekdays, each with a min and max worker count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tickcast.ops.autoscale.errors import ConfigError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS = frozenset(range(5))


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
    >>> s = Schedule("America/New_York", (Window("market hours", time(9, 30), time(16), 4, 8),))
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
