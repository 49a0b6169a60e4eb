"""A symbol's first labels: served as warming up, then the recent leader at a few looks, then the rule alone."""

from __future__ import annotations

import pickle
import random

from tests.unit.predictor.selection.test_champion import run_regimes
from tests.unit.predictor.selection.test_forecaster_selection import bouncing_prices, feed
from tickcast.predictor.forecaster import READY, WARMING_UP
from tickcast.predictor.models import model_spec
from tickcast.predictor.selection.champion import DRIFT, ModelSelection, SelectionConfig
from tickcast.predictor.selection.drift import DriftPolicy
from tickcast.predictor.selection.rule import PromotionPolicy
from tickcast.predictor.selection.warm_up import warm_up_looks

LOOKS = warm_up_looks(PromotionPolicy().warm_up_first_look, PromotionPolicy().warm_up_labels)


def warm_up_config(incumbent: str, challengers: tuple[str, ...]) -> SelectionConfig:
    return SelectionConfig(incumbent, challengers, drift=DriftPolicy("off"))


def test_a_weak_champion_is_replaced_at_the_first_look_with_an_audited_warm_up_verdict() -> None:
    decisions = run_regimes([(400, 0.6)], warm_up_config("persistence", ("mean-reversion", "ew-mean")))
    (t, first), *_ = decisions
    assert t + 1 == LOOKS[0] and first.to_model == "mean-reversion"
    verdict = first.verdict
    assert verdict is not None and verdict.reason == "warm_up" and verdict.level == 1.0 and verdict.p_value == 1.0
    assert verdict.samples == LOOKS[0] and verdict.challenger_mse < verdict.champion_mse


def test_on_noise_changes_happen_only_at_warm_up_looks_and_never_after() -> None:
    # Pure noise: no model has an edge that lasts; whatever leads a window is luck.
    changes = after = 0
    for seed in range(10):
        found = run_regimes([(8000, 0.0)], warm_up_config("ew-mean", ("persistence", "mean-reversion")), seed)
        for t, decision in found:
            if decision.kind == DRIFT:
                continue
            assert t + 1 in LOOKS or t + 1 > LOOKS[-1], t
            changes += 1
            after += t + 1 > LOOKS[-1] and decision.to_model != "persistence"
    assert changes <= 10 * len(LOOKS)
    assert after == 0, "no change after the warm-up but to the model that is truly best on noise"


def test_a_cold_symbol_is_served_as_warming_up_until_the_first_look_even_by_a_model_that_needs_no_warm_up() -> None:
    from tickcast.predictor.forecaster import Forecaster

    forecaster = Forecaster(
        model_spec("mean-reversion"), worker="w", selection=warm_up_config("mean-reversion", ("persistence",))
    )
    statuses = [p.status for p in feed(forecaster, bouncing_prices(60))]
    # The first tick has no return (no features); a label per tick after it; READY once the first look is past.
    ready_from = statuses.index(READY)
    assert set(statuses[:ready_from]) == {WARMING_UP} and set(statuses[ready_from:]) == {READY}
    assert ready_from == LOOKS[0] + 1, ready_from


def test_a_selection_pickled_before_warm_ups_restores_as_past_them() -> None:
    selection = ModelSelection(warm_up_config("persistence", ("mean-reversion",)))
    del selection.__dict__["warm_up"]  # as pickled by a worker from before the warm-up existed
    restored: ModelSelection = pickle.loads(pickle.dumps(selection))
    assert restored.warm_up is None and not restored.cold


def test_no_warm_up_when_its_first_look_is_zero() -> None:
    config = SelectionConfig("persistence", ("mean-reversion",), promotion=PromotionPolicy(warm_up_first_look=0))
    selection = ModelSelection(config)
    assert selection.warm_up is None and not selection.cold
    rng = random.Random(1)
    champion = model_spec("persistence").build()
    for _ in range(100):
        selection.forecast({"last_nonzero_bps": 1.0}, limit=10.0, champion_model=champion)
        champion, found = selection.learn_one({"last_nonzero_bps": 1.0}, rng.gauss(-0.3, 1.0), 0.0, champion)
        assert not found


def test_drift_detection_alone_has_no_warm_up_and_serves_the_configured_model_from_its_warm_up() -> None:
    from tickcast.predictor.forecaster import Forecaster

    config = SelectionConfig("mean-reversion", (), drift=DriftPolicy("page-hinkley"))
    forecaster = Forecaster(model_spec("mean-reversion"), worker="w", selection=config)
    statuses = [p.status for p in feed(forecaster, bouncing_prices(10))]
    assert statuses[1:] == [READY] * 9 and forecaster.states["SPY"].selection.warm_up is None  # type: ignore[union-attr]
