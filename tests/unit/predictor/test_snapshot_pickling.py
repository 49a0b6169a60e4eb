"""Snapshot pickling: a restored state is shaped as it was built, and continues exactly as if never moved."""

from __future__ import annotations

import gc
import io
import pickle
import sys
import types
from array import array
from typing import Any

import pytest
from river import stats

from tickcast.common.records import Lineage, Prediction
from tickcast.predictor import snapshot_pickling
from tickcast.predictor.forecaster import SymbolState
from tickcast.predictor.models import model_spec
from tickcast.predictor.snapshots import SnapshotCodec
from tickcast.testing.state_size import default_forecaster, feed, spy_like_ticks

SPLIT, TICKS = 3_000, 4_000
#: ``Py_TPFLAGS_MANAGED_DICT``: a class whose instances keep their attributes inline until asked for a ``__dict__``.
MANAGED_DICT = 1 << 4


@pytest.fixture(scope="module")
def busy_state() -> SymbolState:
    return feed(default_forecaster(), spy_like_ticks(SPLIT)).states["SPY"]


def _codec() -> SnapshotCodec:
    return SnapshotCodec(b"k" * 32, "linear", model_spec("linear").version, worker="memory")


def _continue(state: SymbolState) -> list[Prediction]:
    """The predictions of ticks SPLIT.. of the stream, by a worker that took ``state`` over."""
    forecaster = default_forecaster()
    forecaster.states["SPY"] = state
    ticks = list(spy_like_ticks(TICKS))[SPLIT:]
    out = []
    for offset, tick in enumerate(ticks, start=SPLIT):
        prediction = forecaster.process(tick, Lineage("ticks", 0, offset, tick.event_time), 0)
        assert prediction is not None
        out.append(prediction)
    return out


def _uninterrupted() -> list[Prediction]:
    forecaster = feed(default_forecaster(), spy_like_ticks(SPLIT))
    return _continue(forecaster.states["SPY"])


def test_a_restored_state_continues_byte_for_byte_as_an_uninterrupted_one(busy_state: SymbolState) -> None:
    codec = _codec()
    restored = codec.decode(codec.encode("SPY", busy_state, created_at=1)).state
    assert restored.selection is not None and any(h.queue.pending for h in restored.horizons)
    assert _continue(restored) == _uninterrupted()


def test_a_snapshot_pickled_the_plain_way_still_restores_and_continues_the_same(
    busy_state: SymbolState, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A snapshot written by the worker before compact pickling: the same record, its payload a plain pickle.
    monkeypatch.setattr(snapshot_pickling, "dumps", lambda state: pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
    codec = _codec()
    old_snapshot = codec.encode("SPY", busy_state, created_at=1)
    monkeypatch.undo()
    assert _continue(codec.decode(old_snapshot).state) == _uninterrupted()


def _loaded_naming(data: bytes) -> tuple[object, set[str]]:
    """``data`` loaded the plain way, as any worker (an older one too) loads it, and the globals it named."""
    names: set[str] = set()

    class NamesRecorded(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            names.add(f"{module}.{name}")
            return super().find_class(module, name)

    return NamesRecorded(io.BytesIO(data)).load(), names  # nosec B301 # pickled by the test


def test_the_pickle_names_only_standard_callables_so_older_workers_load_it(busy_state: SymbolState) -> None:
    restored, names = _loaded_naming(snapshot_pickling.dumps(busy_state))
    _, plain = _loaded_naming(pickle.dumps(busy_state, pickle.HIGHEST_PROTOCOL))
    assert isinstance(restored, SymbolState)
    # Beyond what a plain pickle names (classes an older worker has), only standard callables.
    assert "sys.intern" in names
    assert names - plain <= {"sys.intern", "builtins.float", "builtins.int", "array.array"}


def _has_real_dict(obj: object) -> bool:
    """Whether ``obj`` holds its attributes in a ``__dict__`` (asking for it would make one: look, don't ask).

    An object whose attributes are inline refers to each of their values; one with a real ``__dict__``, to that
    dict alone (besides its class), whose string keys then name attributes holding its values."""
    referents = [referent for referent in gc.get_referents(obj) if referent is not type(obj)]
    if len(referents) != 1 or type(referents[0]) is not dict:
        return False
    missing = object()
    return all(type(name) is str and getattr(obj, name, missing) is value for name, value in referents[0].items())


def _objects_in(state: object) -> list[object]:
    """Every object ``state`` reaches, classes, modules and functions excepted (they are not the state's)."""
    seen: dict[int, object] = {}
    stack = [state]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType | types.FunctionType | types.CodeType):
            continue
        seen[id(obj)] = obj
        stack.extend(gc.get_referents(obj))
    return list(seen.values())


def _inline_objects(state: object) -> list[object]:
    """The objects of ``state`` whose attributes are inline: those a ``__dict__`` could be made for."""
    return [obj for obj in _objects_in(state) if type(obj).__flags__ & MANAGED_DICT and not _has_real_dict(obj)]


def _bytes_in(state: object) -> int:
    """The size of every object ``state`` reaches (as :func:`_objects_in`): a real ``__dict__`` made counts."""
    return sum(sys.getsizeof(obj) for obj in _objects_in(state))


def test_pickling_a_state_leaves_all_its_objects_attributes_inline() -> None:
    # Reading an object's __dict__ (as __reduce_ex__ does) makes one for good: ~64 B per object, +2.6 KB per
    # busy symbol at each owner's first checkpoint.
    state = feed(default_forecaster(), spy_like_ticks(SPLIT)).states["SPY"]
    inline, size = _inline_objects(state), _bytes_in(state)
    assert len(inline) > 30
    restored = pickle.loads(snapshot_pickling.dumps(state))  # nosec B301 # pickled just above
    assert [type(obj).__name__ for obj in inline if _has_real_dict(obj)] == []
    assert _bytes_in(state) == size
    inline, size = _inline_objects(restored), _bytes_in(restored)
    assert len(inline) > 30
    snapshot_pickling.dumps(restored)
    assert [type(obj).__name__ for obj in inline if _has_real_dict(obj)] == []
    assert _bytes_in(restored) == size


def test_restored_objects_keep_their_attributes_inline() -> None:
    mean = stats.Mean()
    mean.update(2.0)
    assert _has_real_dict(pickle.loads(pickle.dumps(mean)))  # nosec B301 # the plain way
    restored = pickle.loads(snapshot_pickling.dumps(mean))  # nosec B301
    assert not _has_real_dict(restored)
    assert (restored.n, restored.get()) == (1, 2.0)


def test_two_restored_symbols_share_their_feature_names_and_statuses(busy_state: SymbolState) -> None:
    data = snapshot_pickling.dumps(busy_state)
    first, second = pickle.loads(data), pickle.loads(data)  # nosec B301 # pickled just above

    def scaler_names(state: SymbolState) -> list[str]:
        return list(state.horizons[1].model.steps["StandardScaler"].means)

    assert all(a is b for a, b in zip(scaler_names(first), scaler_names(second), strict=True))
    assert first.last_prediction is not None and second.last_prediction is not None
    assert first.last_prediction.status is second.last_prediction.status


def test_two_restored_symbols_share_their_settings(busy_state: SymbolState) -> None:
    data = snapshot_pickling.dumps(busy_state)
    first, second = pickle.loads(data), pickle.loads(data)  # nosec B301 # pickled just above

    def settings(state: SymbolState) -> list[float]:
        found = [state.features.ewm_fast.fading_factor, state.features.variance.fading_factor]
        for horizon in state.horizons:
            assert horizon.interval is not None
            found += [horizon.abs_error.fading_factor, horizon.interval.coverage, horizon.interval.step]
        return found

    assert settings(first) == settings(busy_state)
    assert [id(value) for value in settings(first)] == [id(value) for value in settings(second)]


def test_a_number_held_in_two_places_loads_once_and_zeros_keep_their_sign() -> None:
    coverage, big = 0.9, 10**12
    restored: Any = pickle.loads(snapshot_pickling.dumps([stats.Mean(), _Pair(coverage, big), _Pair(coverage, big)]))
    assert restored[1].a is restored[2].a and restored[1].b is restored[2].b
    signed = pickle.loads(snapshot_pickling.dumps(_Pair(0.0, -0.0)))  # nosec B301
    assert str((signed.a, signed.b)) == "(0.0, -0.0)"


def test_an_array_restores_at_its_exact_size() -> None:
    packed = array("d", [1.0, 2.0, 3.0])
    restored = pickle.loads(snapshot_pickling.dumps(_Pair(packed, None))).a  # nosec B301
    assert restored == packed and sys.getsizeof(restored) == sys.getsizeof(packed)


class _Pair:
    def __init__(self, a: Any, b: Any) -> None:
        self.a, self.b = a, b


class _Guarded:
    """Keeps ``level`` in its ``__dict__`` under the name of a property whose setter would change it."""

    @property
    def level(self) -> float:
        return float(vars(self)["level"])

    @level.setter
    def level(self, value: float) -> None:
        vars(self)["level"] = value * 2


def test_an_attribute_a_setter_would_intercept_is_restored_as_it_was() -> None:
    guarded = _Guarded()
    vars(guarded)["level"] = 1.5
    assert pickle.loads(snapshot_pickling.dumps(guarded)).level == 1.5  # nosec B301 # pickled just above


def test_a_restored_state_shares_its_new_workers_horizon_signature(busy_state: SymbolState) -> None:
    # Strings load interned, so the worker's own must be interned too: ~60 B less per restored symbol.
    restored = pickle.loads(snapshot_pickling.dumps(busy_state))  # nosec B301 # pickled just above
    assert restored.horizon_signature is default_forecaster().new_state().horizon_signature


def test_a_restored_state_shares_its_new_workers_horizons(busy_state: SymbolState) -> None:
    # Frozen and equal in every symbol's state: a copy per restored symbol was ~280 B (three horizons, their ints).
    restored = pickle.loads(snapshot_pickling.dumps(busy_state))  # nosec B301 # pickled just above
    workers = default_forecaster().horizons
    assert [h.horizon for h in restored.horizons] == list(workers)
    assert all(h.horizon is own and h.queue.horizon is own for h, own in zip(restored.horizons, workers, strict=True))


def test_no_object_of_a_restored_state_has_a_real_dict(busy_state: SymbolState) -> None:
    # River's StandardScaler.__setstate__ filled one per model (~64 B each): LeanPipeline rebuilds it inline.
    restored = pickle.loads(snapshot_pickling.dumps(busy_state))  # nosec B301 # pickled just above
    assert [type(obj).__name__ for obj in _objects_in(restored) if _has_real_dict(obj)] == []
    assert _continue(restored) == _uninterrupted()


def test_a_restored_last_prediction_shares_its_new_workers_strings(busy_state: SymbolState) -> None:
    # Strings load interned: the worker's own must be too (model version, worker, horizon labels: ~200 B).
    restored = pickle.loads(snapshot_pickling.dumps(busy_state))  # nosec B301 # pickled just above
    worker = feed(default_forecaster(), spy_like_ticks(10))
    built, loaded = worker.states["SPY"].last_prediction, restored.last_prediction
    assert built is not None and loaded is not None
    assert loaded.model_version is built.model_version and loaded.worker is built.worker
    assert all(a.horizon is b.horizon for a, b in zip(loaded.forecasts, built.forecasts, strict=True))


def test_a_restored_states_lists_are_exact_size(busy_state: SymbolState) -> None:
    # Pickle loads a list with room to grow: 32 B more for each of the horizons' list and their queues.
    restored = pickle.loads(snapshot_pickling.dumps(busy_state))  # nosec B301 # pickled just above
    lists = [restored.horizons, *(h.queue._layouts for h in restored.horizons)]  # the queues' one list each
    assert all(len(listed) > 0 for listed in lists)
    assert [sys.getsizeof(listed) for listed in lists] == [sys.getsizeof(listed[:]) for listed in lists]
    arrays = [h.queue._numbers for h in restored.horizons]
    assert [sys.getsizeof(numbers) for numbers in arrays] == [sys.getsizeof(numbers[:]) for numbers in arrays]
    assert _continue(restored) == _uninterrupted()
