"""A restored selection shares its worker's configuration object instead of keeping the snapshot's copy."""

from __future__ import annotations

import gc
import pickle  # nosec B403 # only what these tests pickled is loaded

from tickcast.predictor.models import build_model
from tickcast.predictor.selection.champion import ModelSelection, SelectionConfig
from tickcast.predictor.snapshot_pickling import dumps


def trained_selection(config: SelectionConfig) -> ModelSelection:
    selection, champion = ModelSelection(config), build_model(config.incumbent)
    for t in range(50):
        features = {"r1_bps": float(t % 5 - 2), "last_nonzero_bps": 1.0}
        selection.forecast(features, limit=50.0, champion_model=champion)
        champion, _ = selection.learn_one(features, 0.1 * (t % 3 - 1), 0.0, champion)
    return selection


def test_a_restored_selection_shares_the_workers_equal_configuration() -> None:
    worker = SelectionConfig("linear", ("pa",))
    selection = trained_selection(worker)
    for data in (dumps(selection), pickle.dumps(selection)):
        restored = pickle.loads(data)  # nosec B301 # pickled just above
        assert restored._config is worker and restored._adopted is worker  # reconcile(worker) has nothing to do
        assert sorted(restored.challengers) == ["pa"] and restored.pairs["pa"].samples == selection.pairs["pa"].samples


def test_with_no_equal_configuration_the_snapshots_copy_serves() -> None:
    data = dumps(trained_selection(SelectionConfig("pa", ("linear",), score_fraction=0.5)))
    gc.collect()  # the configuration above is gone: nothing registered is equal to the snapshot's
    restored = pickle.loads(data)  # nosec B301 # pickled just above
    assert restored._config == SelectionConfig("pa", ("linear",), score_fraction=0.5)
    assert restored._adopted is restored._config


def test_a_snapshot_pickled_before_loads_and_shares_too() -> None:
    worker = SelectionConfig("linear", ("pa",))
    selection = trained_selection(worker)
    # Before ModelSelection had __getstate__/__setstate__, snapshots carried (None, attributes) as slot state.
    older = ModelSelection.__new__(ModelSelection)
    older.__setstate__((None, pickle.loads(pickle.dumps(selection.__getstate__()))))  # nosec B301
    assert older._config is worker and older.champion == selection.champion
    assert older.pairs["pa"].statistic() == selection.pairs["pa"].statistic()
