"""Adaptive conformal intervals reach their nominal coverage, also when the volatility changes."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tickcast.predictor.intervals import IntervalTracker


@settings(max_examples=10, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.5, 0.8, 0.9, 0.95]),
    st.floats(0.1, 50.0),
    st.floats(0.2, 5.0),
)
def test_long_run_coverage_is_nominal_through_a_volatility_regime_change(
    seed: int, coverage: float, scale: float, jump: float
) -> None:
    rng = random.Random(seed)
    tracker = IntervalTracker(coverage=coverage)
    for step in range(20_000):
        sigma = scale if step < 10_000 else scale * jump
        # Heavy-tailed and with a point mass at 0, like trade-to-trade returns.
        residual = 0.0 if rng.random() < 0.3 else abs(rng.gauss(0.0, sigma) * rng.choice([1.0, 1.0, 3.0]))
        tracker.update(residual, tracker.half_width_bps)
    assert tracker.empirical_coverage is not None
    # The target (±2 points). ACI's bound on the miss rate shrinks as 1 / steps; what is left after a
    # 5x volatility jump is the time the half-width takes to follow it.
    assert abs(tracker.empirical_coverage - coverage) < 0.02


def test_no_interval_before_a_label_and_coverage_counts_the_served_interval() -> None:
    tracker = IntervalTracker(coverage=0.9)
    assert tracker.empirical_coverage is None
    assert tracker.update(1.0, served_half_width_bps=0.5) is False
    assert tracker.update(1.0, served_half_width_bps=2.0) is True
    assert tracker.empirical_coverage == 0.5
