"""A recorded residual stream replays the forecaster's own intervals exactly as the full evaluation scores them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tickcast.common.records import Tick
from tickcast.evaluation.horizon_scoring import evaluate_horizons
from tickcast.evaluation.residual_streams import (
    ResidualStream,
    load_streams,
    record_residual_streams,
    replay_intervals,
    save_streams,
)
from tickcast.predictor.horizons import parse_horizons
from tickcast.predictor.intervals import IntervalTracker
from tickcast.predictor.models import model_spec


def awkward_ticks(count: int = 6_000, seed: int = 15) -> list[Tick]:
    """Two symbols, bursts of same-millisecond trades, off-market prints and a gap longer than 300 s."""
    rng = random.Random(seed)
    prices = {"A": 50.0, "B": 20.0}
    now, ticks = 1_000_000, []
    for n in range(count):
        now += 0 if rng.random() < 0.2 else rng.randint(1, 900)
        if n == count // 2:
            now += 400_000
        symbol = rng.choice("AB")
        prices[symbol] *= 1.0 + rng.gauss(0.0, 3e-4)
        price = prices[symbol] * (1.05 if rng.random() < 0.003 else 1.0)
        ticks.append(Tick(symbol, round(price, 2), 100.0, now))
    return ticks


@pytest.mark.parametrize("horizons", ["1s,10s", "2s,5t"])
def test_replaying_the_forecasters_own_tracker_reproduces_the_evaluations_coverage_and_width(horizons: str) -> None:
    ticks, parsed = awkward_ticks(), parse_horizons(horizons)
    rows = evaluate_horizons(ticks, ["linear"], parsed, coverage=0.9)
    streams = record_residual_streams(ticks, model_spec("linear"), parsed)
    assert [(r.symbol, r.horizon) for r in rows] == [(s.symbol, s.horizon) for s in streams]
    assert sum(r.dropped_at_gaps for r in rows) > 0
    for row, stream in zip(rows, streams, strict=True):
        replayed = replay_intervals(stream, lambda: IntervalTracker(coverage=0.9))
        assert replayed.scored == row.scored
        assert replayed.coverage == pytest.approx(row.interval_coverage, abs=1e-12)
        assert replayed.mean_width_bps == pytest.approx(row.mean_width_bps, rel=1e-9)


def test_streams_survive_a_round_trip_through_a_file(tmp_path: Path) -> None:
    streams = record_residual_streams(awkward_ticks(1_000), model_spec("linear"), parse_horizons("1s,3t"))
    back = load_streams(save_streams(streams, tmp_path / "streams.npz"))

    def as_bytes(s: ResidualStream) -> tuple[str, str, bytes, bytes, list[int]]:
        # NaN marks unscored forecasts and is never equal to itself: compare the bits.
        return s.symbol, s.horizon, s.kinds.tobytes(), s.values.tobytes(), s.weights.tolist()

    assert [as_bytes(s) for s in back] == [as_bytes(s) for s in streams]
