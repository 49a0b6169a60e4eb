"""A restored selection against this release's registry: a model of a recipe it lacks never serves or competes."""

from __future__ import annotations

import pickle

import pytest
from structlog.testing import capture_logs

from tests.unit.predictor.selection.test_forecaster_selection import CONFIG, bouncing_prices, feed
from tickcast.predictor import models
from tickcast.predictor.forecaster import Forecaster, SymbolState
from tickcast.predictor.models import model_spec
from tickcast.predictor.selection.champion import SelectionConfig

PRICES = bouncing_prices(1600)


def snapshot(ticks: int) -> tuple[bytes, str]:
    """SPY's state pickled after ``ticks`` ticks under CONFIG (persistence, challenger mean-reversion); its champion."""
    first = Forecaster(model_spec("persistence"), "w", selection=CONFIG)
    feed(first, PRICES[:ticks])
    selection = first.states["SPY"].selection
    assert selection is not None
    return pickle.dumps(first.states["SPY"]), selection.champion


def restore(data: bytes, config: SelectionConfig = CONFIG) -> Forecaster:
    restored = Forecaster(model_spec("persistence"), "w2", selection=config)
    restored.states["SPY"] = pickle.loads(data)  # nosec B301 # pickled by this test
    return restored


def served_by(state: SymbolState) -> str:
    return type(state.horizons[0].model).__name__


def test_a_champion_whose_recipe_left_the_registry_falls_back_to_the_configured_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, champion = snapshot(1500)
    assert champion == "mean-reversion"
    monkeypatch.delitem(models.MODELS, "mean-reversion")  # a release without that recipe
    restored = restore(data, SelectionConfig("persistence", ("ew-mean",), CONFIG.score_fraction, CONFIG.promotion,
                                             CONFIG.drift))  # fmt: skip
    with capture_logs() as logs:
        predictions = feed(restored, PRICES[1500:], start=1500)
    state = restored.states["SPY"]
    assert {p.model_name for p in predictions} == {"persistence"} and served_by(state) == "Persistence"
    assert state.selection is not None and state.selection.champion == "persistence"
    assert "mean-reversion" not in state.selection.challengers
    dropped = [e for e in logs if e["event"] == "restored_model_dropped"]
    assert len(dropped) == 1 and dropped[0]["symbol"] == "SPY" and dropped[0]["partition"] == 0, logs
    [event] = restored.model_events[:1]
    assert (event.kind, event.from_model, event.to_model, event.source_offset) == (
        "DEMOTION", "mean-reversion", "persistence", 1500
    )  # fmt: skip


def test_a_fresh_challenger_whose_recipe_left_the_registry_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    data, champion = snapshot(50)
    assert champion == "persistence"
    state = pickle.loads(data)  # nosec B301 # pickled by this test
    state.selection.challengers["mean-reversion~fresh"] = model_spec("mean-reversion").build()
    monkeypatch.delitem(models.MODELS, "mean-reversion")
    restored = restore(pickle.dumps(state), SelectionConfig("persistence", ("ew-mean",), promotion=CONFIG.promotion,
                                                            drift=CONFIG.drift))  # fmt: skip
    feed(restored, PRICES[50:60], start=50)
    selection = restored.states["SPY"].selection
    assert selection is not None and sorted(selection.challengers) == ["ew-mean"]


def test_a_restored_selection_of_this_release_is_kept_as_it_was() -> None:
    data, champion = snapshot(1500)
    restored = restore(data)
    with capture_logs() as logs:
        feed(restored, PRICES[1500:1510], start=1500)
    state = restored.states["SPY"]
    assert state.selection is not None and state.selection.champion == champion == "mean-reversion"
    assert served_by(state) == "MeanReversion" and restored.model_events == []
    assert not [e for e in logs if e["event"] == "restored_model_dropped"]
