"""One symbol's champion and challengers on synthetic feeds with known regimes."""

from __future__ import annotations

import itertools
import pickle
import random

from tickcast.predictor.models import model_spec
from tickcast.predictor.selection.champion import DEMOTION, DRIFT, PROMOTION, Decision, ModelSelection, SelectionConfig
from tickcast.predictor.selection.drift import DriftPolicy
from tickcast.predictor.selection.rule import PromotionPolicy

POLICY = PromotionPolicy(min_samples=300, level=0.01, min_skill_margin=0.01, cooldown=500)


def run_regimes(regimes: list[tuple[int, float]], config: SelectionConfig, seed: int = 1) -> list[tuple[int, Decision]]:
    """Feed ``(labels, bounce)`` regimes: each return is ``-bounce`` times the last one plus noise."""
    rng = random.Random(seed)
    selection, champion = ModelSelection(config), model_spec(config.incumbent).build()
    decisions, last, t = [], 1.0, 0
    for labels, bounce in regimes:
        for _ in range(labels):
            features = {"last_nonzero_bps": last}
            served = champion.predict_one(features)
            selection.forecast(features, limit=100.0)
            label = -bounce * last + rng.gauss(0.0, 1.0)
            champion.learn_one(features, label)
            champion, found = selection.learn_one(features, label, served, champion)
            decisions += [(t, d) for d in found]
            last, t = label, t + 1
    return decisions


def test_a_regime_switch_promotes_the_right_model_within_1500_labels_and_back() -> None:
    config = SelectionConfig("persistence", ("mean-reversion",), promotion=POLICY, drift=DriftPolicy("off"))
    # No bounce: persistence is right. Then a strong bounce: mean reversion is. Then none again.
    decisions = run_regimes([(3000, 0.0), (3000, 0.6), (3000, 0.0)], config)
    # The warm-up (the first 3,200 labels) may follow the lead of 25-label windows; the switch is the rule's.
    warm_up = [t for t, d in decisions if d.verdict is not None and d.verdict.reason == "warm_up"]
    assert all(t < 3200 for t in warm_up) and len(warm_up) <= 8, warm_up
    moves = [(t, d.kind, d.to_model) for t, d in decisions if t not in warm_up]
    assert [m[1:] for m in moves] == [(PROMOTION, "mean-reversion"), (DEMOTION, "persistence")], moves
    (promoted_at, _, _), (demoted_at, _, _) = moves
    assert 3000 <= promoted_at < 4500
    assert 6000 <= demoted_at < 7500


def test_equal_models_on_noise_do_not_flap() -> None:
    # Two copies of one recipe: whatever the noise, neither has an edge.
    config = SelectionConfig("ew-mean", ("ew-mean~copy",), promotion=POLICY, drift=DriftPolicy("off"))
    flips = sum(1 for seed in range(5) for _, d in run_regimes([(4000, 0.0)], config, seed) if d.kind != DRIFT)
    assert flips == 0


def test_sampling_scores_only_its_share_of_labels() -> None:
    config = SelectionConfig("persistence", ("mean-reversion",), score_fraction=0.25, drift=DriftPolicy("off"))
    selection, champion = ModelSelection(config), model_spec("persistence").build()
    for _ in range(400):
        selection.forecast({"last_nonzero_bps": 1.0}, limit=10.0)
        champion, _ = selection.learn_one({"last_nonzero_bps": 1.0}, 0.0, 0.0, champion)
    assert selection.pairs["mean-reversion"].samples == 100


def test_drift_on_residuals_starts_a_fresh_challenger() -> None:
    config = SelectionConfig("persistence", (), drift=DriftPolicy("page-hinkley", ph_threshold=50.0))
    rng = random.Random(3)
    selection, champion = ModelSelection(config), model_spec("persistence").build()
    found = []
    for t in range(4000):
        scale = 1.0 if t < 2000 else 4.0  # volatility quadruples at t = 2000
        champion, decisions = selection.learn_one({}, rng.gauss(0.0, scale), 0.0, champion)
        found += [(t, d) for d in decisions]
    assert found and all(t >= 2000 for t, _ in found), [t for t, _ in found]
    assert found[0][1].to_model == "persistence~fresh" and "persistence~fresh" in selection.challengers
    assert selection.drifting


def test_the_selection_survives_pickling_and_a_new_configuration() -> None:
    config = SelectionConfig("persistence", ("mean-reversion",), promotion=POLICY, drift=DriftPolicy("adwin"))
    selection = ModelSelection(config, champion="mean-reversion")
    restored: ModelSelection = pickle.loads(pickle.dumps(selection))
    assert restored.champion == "mean-reversion" and set(restored.challengers) == {"persistence"}
    restored.reconcile(SelectionConfig("persistence", ("mean-reversion", "ew-mean"), promotion=POLICY))
    assert set(restored.challengers) == {"persistence", "ew-mean"}


def test_a_fresh_restart_of_a_champion_that_is_itself_one_has_its_own_name() -> None:
    # After a drift's fresh restart of the champion was promoted, the champion's slot is "linear~fresh". The next
    # drift started its fresh restart under that same name, so the audit read DRIFT and then DEMOTION
    # "linear~fresh -> linear~fresh": to a reader of model-events, a change that changed nothing.
    config = SelectionConfig(
        "linear", (), promotion=PromotionPolicy(min_samples=100, cooldown=0, warm_up_first_look=0),
        drift=DriftPolicy("page-hinkley", ph_threshold=50.0),
    )  # fmt: skip
    decisions = [d for _, d in run_regimes([(3000, 0.8), (3000, -0.8), (3000, 0.8)], config)]
    changes = [d for d in decisions if d.kind != DRIFT]
    assert len(changes) >= 2, [(d.kind, d.from_model, d.to_model) for d in decisions]
    same = [(d.kind, d.from_model, d.to_model) for d in decisions if d.from_model == d.to_model]
    assert not same, f"events from a model to itself: {same}"
    assert all(a.to_model == b.from_model for a, b in itertools.pairwise(changes)), changes
