"""Unit tests for ``tickcast.evaluation.running_scores``: River's running metrics agree with plain sums, and
pooling per-symbol scores gives the score over all their targets."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickcast.evaluation.running_scores import RunningScores, pooled_score

# Returns in bps, no smaller than 1e-6 unless zero: hypothesis found that sums of ~1e-158 bps make skill ~1e157,
# where summation order alone moves the ratio past any sane tolerance (no tick moves a price by 1e-158 bps).
RETURN = st.floats(-500.0, 500.0, allow_nan=False).filter(lambda x: x == 0.0 or abs(x) >= 1e-6) | st.sampled_from(
    [0.0, 0.0, 1.0, -1.0]
)
TARGET = st.tuples(RETURN, RETURN, st.booleans(), st.integers(0, 3))  # realised, forecast, flagged, symbol


def feed(scores: RunningScores, realised: float, forecast: float, flagged: bool) -> None:
    scores.count_tick(flagged)
    scores.add_target(realised, forecast, flagged)


def close(got: float | None, want: float | None) -> bool:
    if got is None or want is None:
        return got is want
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


@given(st.lists(TARGET, max_size=60))
def test_scores_equal_sums_over_the_targets(targets: list[tuple[float, float, bool, int]]) -> None:
    scores = RunningScores()
    for realised, forecast, flagged, _ in targets:
        feed(scores, realised, forecast, flagged)
    clean = [(r, f) for r, f, flagged, _ in targets if not flagged]
    every = [(r, f) for r, f, _, _ in targets]

    def rms(values: list[float]) -> float | None:
        return math.sqrt(sum(v * v for v in values) / len(values)) if values else None

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    score = scores.score("X")
    assert (score.ticks, score.scored, score.scored_flagged) == (len(targets), len(targets), len(every) - len(clean))
    assert close(score.rmse_all_bps, rms([r - f for r, f in every]))
    assert close(score.rmse_persistence_all_bps, rms([r for r, _ in every]))
    assert close(score.rmse_bps, rms([r - f for r, f in clean]))
    assert close(score.rmse_persistence_bps, rms([r for r, _ in clean]))
    assert close(score.mae_bps, mean([abs(r - f) for r, f in clean]))
    assert close(score.mae_persistence_bps, mean([abs(r) for r, _ in clean]))
    sse = sum((r - f) ** 2 for r, f in clean)
    sse_persistence = sum(r * r for r, _ in clean)
    if sse_persistence > 0:
        assert score.skill is not None and math.isclose(score.skill, 1 - math.sqrt(sse / sse_persistence), abs_tol=1e-9)
    else:
        assert score.skill is None
    moves = [(r, f) for r, f in clean if r != 0.0]
    called = [(r, f) for r, f in moves if f != 0.0]
    assert score.coverage == (len(called) / len(moves) if moves else None)
    hits = sum((r > 0) == (f > 0) for r, f in called)
    assert score.directional_accuracy == (hits / len(called) if called else None)


@given(st.lists(TARGET, max_size=60))
def test_pooling_symbols_equals_scoring_all_their_targets_together(
    targets: list[tuple[float, float, bool, int]],
) -> None:
    parts = [RunningScores() for _ in range(4)]
    together = RunningScores()
    for realised, forecast, flagged, symbol in targets:
        feed(parts[symbol], realised, forecast, flagged)
        feed(together, realised, forecast, flagged)
    pooled, direct = pooled_score("ALL", parts), together.score("ALL")
    assert pooled.symbol == direct.symbol
    for name in pooled.__dataclass_fields__:
        if name != "symbol":
            assert close(getattr(pooled, name), getattr(direct, name)), name


def test_nothing_scored_is_none_not_zero() -> None:
    scores = RunningScores()
    scores.count_tick(flagged=True)
    score = scores.score("X")
    assert (score.rmse_bps, score.mae_bps, score.skill, score.directional_accuracy, score.coverage) == (None,) * 5
    assert score.outlier_share == 1.0
    assert scores.skill_point(7).skill is None


def test_persistence_without_error_has_no_skill() -> None:
    scores = RunningScores()
    feed(scores, 0.0, 0.5, flagged=False)
    assert scores.score("X").rmse_persistence_bps == 0.0
    assert scores.score("X").skill is None
    assert scores.score("X").rmse_bps == pytest.approx(0.5)
