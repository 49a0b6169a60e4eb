"""A restored selection against this release's registry: a model of a recipe it lacks, or built under another
version of one, never serves or competes under this release's name for it."""

from __future__ import annotations

import pickle
from dataclasses import replace

import pytest
from structlog.testing import capture_logs

from tests.unit.predictor.selection.test_forecaster_selection import CONFIG, bouncing_prices, feed
from tickcast.predictor import models
from tickcast.predictor.baselines import EWMeanReturn
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


def bumped_mean_reversion(monkeypatch: pytest.MonkeyPatch) -> None:
    """A release whose mean-reversion recipe is version 3, built another way (here: as an EW mean)."""
    spec = replace(model_spec("mean-reversion"), version="3", build=EWMeanReturn)
    monkeypatch.setitem(models.MODELS, "mean-reversion", spec)


def test_a_champion_of_a_bumped_recipe_version_is_not_served_under_the_new_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, champion = snapshot(1500)
    assert champion == "mean-reversion"
    bumped_mean_reversion(monkeypatch)
    restored = restore(data)
    predictions = feed(restored, PRICES[1500:1510], start=1500)
    state = restored.states["SPY"]
    named = {(p.model_name, p.model_recipe_version) for p in predictions}
    assert named == {("persistence", "1")}, f"named {named}, served by {served_by(state)}"
    assert served_by(state) == "Persistence"
    assert state.selection is not None and type(state.selection.challengers["mean-reversion"]) is EWMeanReturn
    assert [(e.kind, e.from_model, e.to_model) for e in restored.model_events] == [
        ("DEMOTION", "mean-reversion", "persistence")
    ]


def test_a_challenger_of_a_bumped_recipe_version_starts_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    data, champion = snapshot(50)
    assert champion == "persistence"
    bumped_mean_reversion(monkeypatch)
    restored = restore(data)
    feed(restored, PRICES[50:60], start=50)
    selection = restored.states["SPY"].selection
    assert selection is not None
    kept = type(selection.challengers["mean-reversion"]).__name__
    assert kept == "EWMeanReturn", f"challenger mean-reversion v3 is a {kept}, built by v2's recipe"
    assert restored.model_events == []


def test_a_restored_selection_of_this_release_is_kept_as_it_was() -> None:
    data, champion = snapshot(1500)
    restored = restore(data)
    with capture_logs() as logs:
        feed(restored, PRICES[1500:1510], start=1500)
    state = restored.states["SPY"]
    assert state.selection is not None and state.selection.champion == champion == "mean-reversion"
    assert served_by(state) == "MeanReversion" and restored.model_events == []
    assert not [e for e in logs if e["event"] == "restored_model_dropped"]
