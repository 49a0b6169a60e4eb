"""Unit tests for ``tickcast.producer.replay.paced``: replaying a file at a multiple of its own pace."""

from __future__ import annotations

import pytest

from tickcast.common.records import Tick
from tickcast.producer.replay import paced


class FakeClock:
    """A monotonic clock that only moves when slept on (or advanced by the test)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def ticks_at(*event_times: int) -> list[Tick]:
    return [Tick("SPY", 1.0, 1.0, t) for t in event_times]


@pytest.mark.parametrize("speed", [None, 0, 0.0])
def test_pacing_off_never_sleeps(speed: float | None) -> None:
    clock = FakeClock()
    ticks = ticks_at(0, 10_000, 20_000)
    assert list(paced(ticks, speed, clock=clock, sleep=clock.sleep)) == ticks
    assert clock.sleeps == []


def test_pacing_follows_event_time_divided_by_speed() -> None:
    clock = FakeClock()
    yielded_at = [
        (t.event_time, clock.now) for t in paced(ticks_at(1_000, 1_000, 3_000, 7_000), 2.0, clock, clock.sleep)
    ]
    assert yielded_at == [(1_000, 100.0), (1_000, 100.0), (3_000, 101.0), (7_000, 103.0)]


def test_pacing_never_sleeps_for_time_going_backwards_and_does_not_drift() -> None:
    clock = FakeClock()
    out = []
    for tick in paced(ticks_at(10_000, 12_000, 11_000, 14_000), 1.0, clock, clock.sleep):
        out.append((tick.event_time, clock.now))
        clock.now += 0.5  # a slow consumer: after the first tick, its time counts towards the next wait
    assert out == [(10_000, 100.0), (12_000, 102.5), (11_000, 103.0), (14_000, 104.5)]
    assert clock.sleeps == [2.0, 1.0]


def test_pacing_starts_once_the_first_tick_is_handled() -> None:
    # Sending the first tick may take a new producer ~0.5 s (connections, its producer id): the rest keep
    # their spacing from then on instead of going out in a burst to catch up.
    clock = FakeClock()
    out = []
    for tick in paced(ticks_at(0, 100, 200), 1.0, clock, clock.sleep):
        out.append((tick.event_time, round(clock.now, 3)))
        if not out[1:]:
            clock.now += 0.5
    assert out == [(0, 100.0), (100, 100.6), (200, 100.7)]


def test_pacing_rejects_a_negative_or_non_finite_speed() -> None:
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="speed"):
            paced([], bad)


def test_pacing_is_lazy() -> None:
    clock = FakeClock()
    source = iter(ticks_at(0, 1_000_000))
    first = next(paced(source, 1.0, clock, clock.sleep))
    assert first.event_time == 0 and clock.sleeps == []
