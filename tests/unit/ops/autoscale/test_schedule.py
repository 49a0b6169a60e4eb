"""Calendar windows: local time in their zone across daylight saving, weekdays, first match wins, validation."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from tickcast.ops.autoscale.errors import ConfigError
from tickcast.ops.autoscale.schedule import Bounds, Schedule, Window

OPEN = Window("open", time(9, 30), time(16), min_workers=4, max_workers=8)
LATE = Window("late", time(15), time(20), min_workers=1, max_workers=2, days=frozenset({5}))
SCHEDULE = Schedule("America/New_York", (OPEN, LATE), outside_min=1, outside_max=3)


def test_windows_follow_local_time_across_daylight_saving() -> None:
    # 09:45 in New York is 14:45 UTC in winter (EST) and 13:45 UTC in summer (EDT).
    assert SCHEDULE.bounds_at(datetime(2024, 3, 4, 14, 45, tzinfo=UTC)) == Bounds(4, 8, "window 'open'")
    assert SCHEDULE.bounds_at(datetime(2024, 7, 1, 13, 45, tzinfo=UTC)) == Bounds(4, 8, "window 'open'")
    assert SCHEDULE.bounds_at(datetime(2024, 7, 1, 13, 15, tzinfo=UTC)).source == "outside the windows"


def test_the_first_matching_window_wins_and_days_are_respected() -> None:
    monday_15h, saturday_15h = datetime(2024, 3, 4, 20, tzinfo=UTC), datetime(2024, 3, 9, 20, tzinfo=UTC)
    assert SCHEDULE.bounds_at(monday_15h).source == "window 'open'"  # `late` overlaps, but only on Saturdays
    assert SCHEDULE.bounds_at(saturday_15h) == Bounds(1, 2, "window 'late'")
    assert SCHEDULE.bounds_at(datetime(2024, 3, 10, 20, tzinfo=UTC)) == Bounds(1, 3, "outside the windows")


def test_the_end_of_a_window_is_exclusive() -> None:
    monday = datetime(2024, 3, 4)
    assert OPEN.contains(monday.replace(hour=9, minute=30)) and not OPEN.contains(monday.replace(hour=16))


def test_bad_windows_and_zones_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="end 09:00:00 must be after start 10:00:00"):
        Window("backwards", time(10), time(9))
    with pytest.raises(ConfigError, match="need 0 <= min <= max"):
        Window("inverted", time(9), time(10), min_workers=3, max_workers=2)
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        Schedule("Mars/Olympus")
    with pytest.raises(ValueError, match="aware"):
        SCHEDULE.bounds_at(datetime(2024, 3, 4, 10))
