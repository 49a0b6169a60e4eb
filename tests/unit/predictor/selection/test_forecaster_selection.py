"""The forecaster with challengers: what serves is named in each prediction, and it survives a snapshot."""

from __future__ import annotations

import pickle
import random
from dataclasses import fields

import pytest

from tickcast.common.records import Lineage, Prediction, Tick
from tickcast.predictor.forecaster import Forecaster, SymbolState
from tickcast.predictor.horizons import parse_horizons
from tickcast.predictor.models import model_spec
from tickcast.predictor.selection.champion import SelectionConfig
from tickcast.predictor.selection.drift import DriftPolicy
from tickcast.predictor.selection.rule import PromotionPolicy

CONFIG = SelectionConfig(
    "persistence",
    ("mean-reversion",),
    # No warm-up: these tests are about the rule's promotions (the warm-up has its own below).
    promotion=PromotionPolicy(min_samples=100, cooldown=0, warm_up_first_look=0),
    drift=DriftPolicy("off"),
)


def bouncing_prices(ticks: int, seed: int = 5) -> list[float]:
    """Prices whose every move undoes about half the last one (bid-ask bounce): mean reversion wins."""
    rng, price, last = random.Random(seed), 100.0, 1.0
    prices = []
    for _ in range(ticks):
        move = -0.5 * last + rng.gauss(0.0, 1.0)
        price *= 1.0 + move / 1e4
        prices.append(price)
        last = move
    return prices


def feed(forecaster: Forecaster, prices: list[float], start: int = 0) -> list[Prediction]:
    return [
        forecaster.process(Tick("SPY", p, 1.0, (start + i) * 1000), Lineage("ticks", 0, start + i, 0), now_us=0)
        for i, p in enumerate(prices)
    ]


def test_a_promotion_changes_the_served_model_name_and_is_an_event() -> None:
    forecaster = Forecaster(model_spec("persistence"), worker="w", selection=CONFIG)
    served = {p.model_name for p in feed(forecaster, bouncing_prices(1500))}
    assert served == {"persistence", "mean-reversion"}
    [event] = forecaster.model_events
    assert (event.kind, event.symbol, event.from_model, event.to_model) == ("PROMOTION", "SPY", "persistence",
                                                                           "mean-reversion")  # fmt: skip
    assert event.samples >= 100 and event.p_value <= event.level and event.skill_margin >= 0.01
    assert event.worker == "w" and event.source_topic == "ticks"


def test_the_champion_survives_a_snapshot_round_trip() -> None:
    forecaster = Forecaster(model_spec("persistence"), worker="w", selection=CONFIG)
    prices = bouncing_prices(1600)
    feed(forecaster, prices[:1500])
    state = pickle.loads(pickle.dumps(forecaster.states["SPY"]))
    restored = Forecaster(model_spec("persistence"), worker="w2", selection=CONFIG)
    restored.states["SPY"] = state
    assert {p.model_name for p in feed(restored, prices[1500:], start=1500)} == {"mean-reversion"}


def test_a_snapshot_from_before_selection_restores_and_serves_the_configured_model() -> None:
    forecaster = Forecaster(model_spec("persistence"), worker="w")
    feed(forecaster, bouncing_prices(50))
    # A state pickled before the `selection` field existed: its pickled values stop before that field.
    values = forecaster.states["SPY"].__getstate__()
    assert len(values) == len(fields(SymbolState)) and fields(SymbolState)[-1].name == "selection"
    old = SymbolState.__new__(SymbolState)
    old.__setstate__(pickle.loads(pickle.dumps(values[:-1])))
    old.restored_from(49, 3)
    restored = Forecaster(model_spec("persistence"), worker="w2", selection=CONFIG)
    restored.states["SPY"] = old
    assert {p.model_name for p in feed(restored, bouncing_prices(10, seed=9), start=50)} == {"persistence"}
    assert restored.states["SPY"].selection is not None


@pytest.mark.parametrize(("before", "after"), [("1t,5t", "5t"), ("1t,5t", "2t,5t"), ("2t,5t", "1t,2t")])
def test_a_champion_restored_under_another_shortest_horizon_is_not_served_under_its_name(
    before: str, after: str
) -> None:
    # Selection runs on the shortest horizon. Restored under horizons whose shortest is another, the state kept
    # its champion's name while a model of the configured recipe served it (or the promoted model went on
    # serving a longer horizon under the configured recipe's name).
    first = Forecaster(model_spec("persistence"), "w", horizons=parse_horizons(before), selection=CONFIG)
    prices = bouncing_prices(1600)
    feed(first, prices[:1500])
    assert first.states["SPY"].selection is not None and first.states["SPY"].selection.champion == "mean-reversion"
    restored = Forecaster(model_spec("persistence"), "w2", horizons=parse_horizons(after), selection=CONFIG)
    restored.states["SPY"] = pickle.loads(pickle.dumps(first.states["SPY"]))
    last = feed(restored, prices[1500:], start=1500)[-1]
    serving = [type(h.model).__name__ for h in restored.states["SPY"].horizons]
    named = type(model_spec(last.model_name).build()).__name__
    assert serving[0] == named and set(serving[1:]) <= {"Persistence"}, (
        f"named {last.model_name!r}, served by {serving} (shortest first)"
    )


def test_a_symbol_restored_in_its_warm_up_under_a_config_without_challengers_is_served_again() -> None:
    # The warm-up ends at looks scored against challengers. A symbol snapshotted before its first look and
    # restored by a worker whose TICKCAST_CHALLENGERS is empty (drift detection still on) kept its warm-up with
    # no challenger to score: cold for good, every forecast of its shortest horizon served as warming up.
    warming = SelectionConfig("persistence", ("mean-reversion",), promotion=PromotionPolicy(warm_up_first_look=25))
    first = Forecaster(model_spec("persistence"), "w", selection=warming)
    prices = bouncing_prices(600)
    feed(first, prices[:10])
    assert first.states["SPY"].selection is not None and first.states["SPY"].selection.cold
    drift_only = SelectionConfig("persistence", (), drift=DriftPolicy("page-hinkley"))
    restored = Forecaster(model_spec("persistence"), "w2", selection=drift_only)
    restored.states["SPY"] = pickle.loads(pickle.dumps(first.states["SPY"]))
    statuses = [p.status for p in feed(restored, prices[10:], start=10)]
    assert statuses[-1] == "READY", f"{statuses.count('WARMING_UP')} of {len(statuses)} served as warming up"


def test_challengers_newly_configured_do_not_send_a_trained_champion_back_to_warm_up() -> None:
    # A worker restarted with TICKCAST_CHALLENGERS newly set restores states with no selection. Their champion has
    # learned hundreds of labels and served READY, but the selection started for them began with a new symbol's
    # cold start: the shortest horizon served 0 bps as warming up until the challengers had 25 scored labels.
    first = Forecaster(model_spec("linear"), "w")
    prices = bouncing_prices(400)
    before = feed(first, prices[:300])
    assert before[-1].status == "READY"
    warming = SelectionConfig("linear", ("pa",), promotion=PromotionPolicy(warm_up_first_look=25))
    restored = Forecaster(model_spec("linear"), "w2", selection=warming)
    restored.states["SPY"] = pickle.loads(pickle.dumps(first.states["SPY"]))
    statuses = [p.status for p in feed(restored, prices[300:], start=300)]
    assert statuses.count("WARMING_UP") == 0, (
        f"a trained champion served {statuses.count('WARMING_UP')} of {len(statuses)} ticks as warming up"
    )
    assert restored.states["SPY"].selection is not None and restored.states["SPY"].selection.challengers.keys() == {
        "pa"
    }
