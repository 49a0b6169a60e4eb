"""Adaptive conformal intervals reach their nominal coverage, also when the volatility changes."""

from __future__ import annotations

import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickcast.evaluation.residual_streams import LABEL, SERVE, ResidualStream, replay_intervals
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


def overlapping_stream(seed: int, horizon: int, spacing: int, count: int = 40_000) -> ResidualStream:
    """A forecast served every step, its residual the sum of the next ``horizon`` returns (overlapping labels:
    strongly autocorrelated residuals), labelled ``horizon`` steps late, with volatility switching regime (4x).
    While volatility is high, only every ``spacing``-th forecast is queued, standing for those skipped (as the
    label queue samples a busy symbol); the others are served and scored all the same."""
    rng = random.Random(seed)
    sigma, returns, high = 1.0, [], []
    for _ in range(count + horizon + 1):
        if rng.random() < 0.002:
            sigma = 4.0 if sigma == 1.0 else 1.0
        returns.append(rng.gauss(0.0, sigma))
        high.append(sigma > 1.0)
    stream = ResidualStream("X", f"{horizon}t")
    due: dict[int, tuple[float, int]] = {}
    window, unsampled = sum(returns[1 : horizon + 1]), 0
    for i in range(count):
        label = due.pop(i, None)
        if label is not None:
            stream.add(LABEL, *label)
        queued = not high[i] or unsampled + 1 >= spacing
        stream.add(SERVE, abs(window), int(queued))
        if queued:
            due[i + horizon] = (abs(window), unsampled + 1)
            unsampled = 0
        else:
            unsampled += 1
        window += returns[i + horizon + 1] - returns[i + 1]
    return stream


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.8, 0.9, 0.95]), st.sampled_from([1, 8]), st.sampled_from([1, 6]))
def test_served_coverage_is_nominal_on_delayed_overlapping_labels_with_sampled_busy_stretches(
    seed: int, coverage: float, horizon: int, spacing: int
) -> None:
    stream = overlapping_stream(seed, horizon, spacing)
    score = replay_intervals(stream, lambda: IntervalTracker(coverage=coverage))
    assert score.coverage is not None
    # Measured on the real trades: within 1.5 points in every cell; the synthetic bursts are harsher (4x
    # volatility at random), ±2 points is the target.
    assert abs(score.coverage - coverage) < 0.02, score


def test_forecasts_skipped_between_two_labels_are_credited_half_to_each() -> None:
    tracker = IntervalTracker(coverage=0.9)
    tracker.update(5.0, served_half_width_bps=1.0)  # a miss
    # This label stands for itself and 4 skipped before it: 2 of those go to the previous (missed) label.
    assert tracker.update(0.5, served_half_width_bps=1.0, weight=5) is True
    assert (tracker.scored, tracker.covered) == (6, 3)


def test_a_snapshot_from_before_the_previous_miss_was_kept_restores() -> None:
    old = IntervalTracker(coverage=0.9, half_width_bps=2.0, scored=10, covered=9)
    state = old.__reduce_ex__(4)[2]
    assert isinstance(state, tuple)
    del state[1]["previous_missed"]
    restored = IntervalTracker.__new__(IntervalTracker)
    restored.__setstate__(state)
    assert (restored.half_width_bps, restored.previous_missed) == (2.0, False)
    assert pickle.loads(pickle.dumps(old)) == old


def test_a_label_on_the_edge_of_its_interval_is_covered() -> None:
    tracker = IntervalTracker(coverage=0.9)
    assert tracker.update(0.0, served_half_width_bps=0.0) is True, "a zero residual is outside a zero-width interval"
    assert tracker.update(1.5, served_half_width_bps=1.5) is True, "a residual on the interval's edge is a miss"


def test_the_first_label_sizes_the_interval_and_counts_its_whole_weight() -> None:
    tracker = IntervalTracker(coverage=0.9)
    assert tracker.update(3.0, served_half_width_bps=0.0, weight=4) is False
    assert tracker.half_width_bps == 3.0, "the first label does not give the half-width a first guess of its size"
    assert tracker.empirical_coverage == 0.0, "a miss on the first label leaves no coverage to report"
    covered = IntervalTracker(coverage=0.9)
    covered.update(1.0, served_half_width_bps=2.0, weight=4)
    assert (covered.scored, covered.covered) == (4, 4), "the first label's covered weight is not its weight"


@pytest.mark.parametrize(
    ("previous_hit", "hit", "weight", "expected"),
    [
        # weight 2: the one skipped forecast is nearer this label in expectation, so it is all this label's.
        (False, True, 2, (3, 2)),
        # weight 4: 1 of the 3 skipped goes to the previous label, the rest (and itself) to this one.
        (False, True, 4, (5, 3)),
        (True, False, 4, (5, 2)),
        (True, False, 5, (6, 3)),
        (True, True, 5, (6, 6)),
        (False, False, 5, (6, 0)),
    ],
)
def test_skipped_forecasts_are_split_between_the_two_labels_around_them(
    previous_hit: bool, hit: bool, weight: int, expected: tuple[int, int]
) -> None:
    tracker = IntervalTracker(coverage=0.9)
    tracker.update(1.0, served_half_width_bps=2.0 if previous_hit else 0.5)
    tracker.update(1.0, served_half_width_bps=2.0 if hit else 0.5, weight=weight)
    assert (tracker.scored, tracker.covered) == expected, f"(scored, covered) after a label of weight {weight}"


def test_skipped_forecasts_credited_to_a_missed_label_widen_the_interval_though_this_label_is_covered() -> None:
    tracker = IntervalTracker(coverage=0.9)
    tracker.update(4.0, served_half_width_bps=1.0)  # a miss
    before = tracker.half_width_bps
    assert tracker.update(0.5, served_half_width_bps=1.0, weight=9) is True
    # 5 covered forecasts pull in by 5 x 0.1, the 4 credited to the missed label push out by 4 x 0.9.
    assert tracker.half_width_bps > before, "the missed forecasts skipped before a covered label did not widen it"


def test_the_half_width_never_goes_negative_on_a_symbol_that_stops_moving() -> None:
    tracker = IntervalTracker(coverage=0.9)
    tracker.update(1.0, served_half_width_bps=0.0)
    for label in range(2_000):
        tracker.update(0.0, tracker.half_width_bps)
        assert tracker.half_width_bps >= 0.0, f"half-width {tracker.half_width_bps} after {label + 1} flat labels"


def all_missed(weight: int, labels: int = 300) -> IntervalTracker:
    tracker = IntervalTracker(coverage=0.9)
    for label in range(labels):
        tracker.update(1.0 + label, served_half_width_bps=0.0, weight=weight)
    return tracker


def test_the_step_is_relative_to_the_usual_weight_of_a_label() -> None:
    # Every label misses: a label of weight 7 among labels of weight 7 is an ordinary one, and moves the
    # half-width as much as a label of weight 1 among labels of weight 1.
    single, sevens = all_missed(1), all_missed(7)
    assert sevens.half_width_bps == pytest.approx(single.half_width_bps, rel=1e-9), (
        f"weight-7 labels grew the half-width to {sevens.half_width_bps}, weight-1 ones to {single.half_width_bps}"
    )
    # Once weight-4 labels are the norm (the running mean has followed), one moves it by about one ordinary step.
    tracker = IntervalTracker(coverage=0.9)
    tracker.update(1.0, served_half_width_bps=0.0)
    for _ in range(2_000):
        tracker.update(1.0, served_half_width_bps=0.0, weight=4)
    before = tracker.half_width_bps
    tracker.update(1.0, served_half_width_bps=0.0, weight=4)
    alpha = 1.0 - tracker.coverage
    ordinary_miss_step = tracker.step * tracker.scale_bps * (1.0 - alpha)
    assert tracker.half_width_bps - before == pytest.approx(ordinary_miss_step, rel=0.01), (
        "a label of the usual weight 4 did not move the half-width by one ordinary step"
    )


def test_skipped_forecasts_go_to_the_label_just_before_them_not_the_first_one() -> None:
    tracker = IntervalTracker(coverage=0.9)
    tracker.update(1.0, served_half_width_bps=2.0)  # covered
    tracker.update(1.0, served_half_width_bps=0.5)  # missed
    tracker.update(1.0, served_half_width_bps=2.0, weight=5)  # covered; 2 of its 4 skipped go to the missed label
    assert (tracker.scored, tracker.covered) == (7, 4), "the skipped forecasts were credited to the wrong label"
