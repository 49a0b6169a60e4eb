"""Tracker on its own, with clocks the test sets: gaps only where the client sees everything, and staleness."""

from __future__ import annotations

from dataclasses import replace

from tickcast.client.records import PredictionRecord
from tickcast.client.tracking import Tracker

BASE = PredictionRecord(
    "SPY", 0, 100.0, 1.0, 100.01, 1, "READY", "linear", "3", 0, "ticks", 0, 0, 0, 0, "w-1", None, (), 0, 0
)


class Clocks:
    """A monotonic and a wall clock the test moves (seconds)."""

    def __init__(self) -> None:
        self.monotonic, self.wall = 100.0, 1_000.0

    def advance(self, seconds: float) -> None:
        self.monotonic += seconds
        self.wall += seconds


def made(symbol: str, source_offset: int, at_wall_s: float) -> PredictionRecord:
    return replace(BASE, symbol=symbol, source_offset=source_offset, predicted_at=int(at_wall_s * 1_000_000))


def tracker(clocks: Clocks, stale_after_s: float = 10.0) -> Tracker:
    return Tracker(["SPY"], stale_after_s, clock=lambda: clocks.monotonic, wall_clock=lambda: clocks.wall)


def test_skipped_offsets_of_a_filtered_stream_are_not_gaps() -> None:
    gaps: list[tuple[str, int, int, int]] = []
    tracking = Tracker(on_gap=lambda *gap: gaps.append(gap))
    assert tracking.accept(replace(BASE, source_offset=0), complete=False)
    assert tracking.accept(replace(BASE, source_offset=5), complete=False)  # offsets 1-4: other symbols'
    assert (tracking.stats.gaps, tracking.stats.missed_offsets, gaps) == (0, 0, [])


def test_a_prediction_made_exactly_stale_after_s_ago_is_not_stale() -> None:
    clocks = Clocks()
    tracking = tracker(clocks)
    clocks.advance(11.0)
    assert tracking.check_stale() == ["SPY"]  # nothing since the subscription started
    assert tracking.stats.stale_reports == 1
    tracking.accept(made("SPY", 0, clocks.wall - 10.0), complete=True)
    assert tracking.stats.stale_symbols == set(), "a prediction exactly stale_after_s old did not make SPY fresh"
    assert tracking.check_stale() == [], "a prediction exactly stale_after_s old was reported stale"


def test_a_prediction_stamped_ahead_of_the_clients_clock_still_goes_stale() -> None:
    # The worker's clock is 5 minutes ahead of the client's: its forecasts look as if made in the future. They
    # count as made now, so ten seconds without a new one is still stale, not five minutes and ten seconds.
    clocks = Clocks()
    tracking = tracker(clocks)
    tracking.accept(made("SPY", 0, clocks.wall + 300.0), complete=True)
    clocks.advance(11.0)
    assert tracking.check_stale() == ["SPY"], "a prediction stamped ahead of the clock kept SPY fresh too long"
