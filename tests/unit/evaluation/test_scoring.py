"""Unit tests for ``tickcast.evaluation.scoring``: scores checked against hand computation on tiny series."""

from __future__ import annotations

import math

import pytest

from tickcast.common.records import Tick
from tickcast.evaluation import OVERALL, evaluate
from tickcast.predictor.features import MIN_TICKS_FOR_OUTLIERS

PRICES = [100.0, 100.01, 100.0, 100.0, 100.01, 100.02]


def ticks(prices: list[float], symbol: str = "X") -> list[Tick]:
    return [Tick(symbol, price, 1.0, 1_000 * i) for i, price in enumerate(prices)]


def bps(new: float, old: float) -> float:
    return 1e4 * math.log(new / old)


def test_rmse_mae_and_direction_match_a_hand_computation() -> None:
    # Mean reversion forecasts -0.3 x the last non-zero return; every forecast is READY (no warm-up).
    r = [bps(PRICES[i], PRICES[i - 1]) for i in range(1, len(PRICES))]  # r1..r5
    forecasts = [-0.3 * r[0], -0.3 * r[1], -0.3 * r[1], -0.3 * r[3]]  # made at ticks 1..4; r3 == 0
    targets = r[1:]  # r2..r5
    errors = [t - f for t, f in zip(targets, forecasts, strict=True)]
    # About (-0.7, -0.3, 0.7, 1.3) and (-1, 0, 1, 1): RMSE sqrt(0.69) = 0.8307 vs sqrt(0.75) = 0.8660.
    expected_rmse = math.sqrt(sum(e * e for e in errors) / 4)
    expected_persistence = math.sqrt(sum(t * t for t in targets) / 4)
    assert expected_rmse == pytest.approx(0.8307, abs=1e-3)
    assert expected_persistence == pytest.approx(0.8660, abs=1e-3)

    score = evaluate(ticks(PRICES), ["mean-reversion"]).model("mean-reversion").overall

    assert (score.ticks, score.scored, score.scored_flagged) == (6, 4, 0)
    assert score.rmse_bps == pytest.approx(expected_rmse, rel=1e-9)
    assert score.rmse_persistence_bps == pytest.approx(expected_persistence, rel=1e-9)
    assert score.skill == pytest.approx(1 - expected_rmse / expected_persistence, rel=1e-9)
    assert score.rmse_all_bps == pytest.approx(expected_rmse, rel=1e-9)
    assert score.mae_bps == pytest.approx(sum(abs(e) for e in errors) / 4, rel=1e-9)
    assert score.mae_persistence_bps == pytest.approx(sum(abs(t) for t in targets) / 4, rel=1e-9)
    # Three non-zero targets (r2 down, r4 up, r5 up), all with a non-zero forecast (up, up, down): 2 hits.
    assert score.directional_accuracy == pytest.approx(2 / 3)
    assert score.coverage == 1.0
    assert score.non_finite == 0
    assert score.outlier_share == 0.0


def test_persistence_has_no_skill_no_direction_and_no_coverage() -> None:
    score = evaluate(ticks(PRICES), ["persistence"]).model("persistence").overall
    assert score.skill == 0.0
    assert score.directional_accuracy is None
    assert score.coverage == 0.0


def test_warming_up_predictions_are_not_scored() -> None:
    # The linear model waits for 20 learned ticks: of 25 ticks, ticks 21..24 are READY with a target.
    prices = [100.0 + 0.01 * (i % 3) for i in range(25)]
    score = evaluate(ticks(prices), ["linear"]).model("linear").overall
    assert score.ticks == 25
    assert score.scored == 3


def test_flagged_prints_count_in_all_but_not_in_the_clean_score() -> None:
    calm = [100.0 + 0.01 * (i % 2) for i in range(MIN_TICKS_FOR_OUTLIERS + 10)]
    prices = [*calm, 110.0, 100.0, 100.01, 100.0]  # an off-market print and the way back
    report = evaluate(ticks(prices), ["persistence"])
    score = report.model("persistence").overall

    assert score.scored_flagged == 2  # both legs of the print are flagged
    assert score.outlier_share == pytest.approx(2 / len(prices))
    clean = [bps(prices[i], prices[i - 1]) for i in range(2, len(prices))]
    dirty = [clean.pop(len(calm) - 2), clean.pop(len(calm) - 2)]  # targets start at tick 2
    assert dirty[0] == pytest.approx(bps(110.0, 100.01))
    assert score.rmse_bps == pytest.approx(math.sqrt(sum(x * x for x in clean) / len(clean)))
    everything = clean + dirty
    assert score.rmse_all_bps == pytest.approx(math.sqrt(sum(x * x for x in everything) / len(everything)))


def test_models_see_the_same_ticks_and_symbols_are_split_and_summed() -> None:
    stream = [t for pair in zip(ticks(PRICES, "A"), ticks(PRICES[::-1], "B"), strict=True) for t in pair]
    report = evaluate(stream, ["persistence", "mean-reversion"])
    for model in report.models:
        assert [s.symbol for s in model.symbols] == ["A", "B"]
        assert model.overall.symbol == OVERALL
        assert model.overall.ticks == sum(s.ticks for s in model.symbols) == len(stream)
        assert model.overall.scored == sum(s.scored for s in model.symbols) == 8
        assert model.ticks_per_second is not None and model.ticks_per_second > 0


def test_skill_series_is_cumulative_and_ends_at_the_final_score() -> None:
    prices = [100.0 + 0.01 * (i % 3) for i in range(203)]
    report = evaluate(ticks(prices), ["mean-reversion"], checkpoint_every=50)
    model = report.model("mean-reversion")
    series = model.series["X"]
    assert [p.ticks for p in series] == [52, 102, 152, 202, 203]
    assert series[-1].skill == pytest.approx(model.overall.skill)
    assert series[-1].skill_all == pytest.approx(model.overall.skill_all)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="checkpoint_every"):
        evaluate([], ["persistence"], checkpoint_every=0)
    with pytest.raises(ValueError, match="distinct"):
        evaluate([], ["persistence", "persistence"])
