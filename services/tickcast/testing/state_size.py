"""How many bytes one symbol costs a worker, part by part: the measure behind the ≤ 20 KB target (issue 15).

**What is counted.** A symbol's :class:`~tickcast.predictor.forecaster.SymbolState` is dropped one part at a
time, and each part's count is the memory Python's allocator gets back when that part goes, as
:mod:`tracemalloc` sees it (after ``gc.collect()``, which also empties the float, tuple and list free lists,
so a count does not depend on what ran before). The parts add up to the whole. Objects shared with other
symbols (classes, interned attribute names, module-level singletons such as a model's immutable settings)
are not counted: they do not grow with the symbol count. Not counted either: pymalloc's pool overhead (a few
percent) and memory Rust extensions allocate outside Python's allocator (River's statistics keep their few
floats inside the Python object, which is counted). Two states are measured:

- :func:`measure_live`: the state as the worker that built it holds it (tracing must run while it is built);
- :func:`measure`: the state rebuilt from its snapshot's pickle, as a worker holds it after taking the symbol
  over. Pickled the plain way (``pickle.dumps``, as snapshots were before
  :mod:`tickcast.predictor.snapshot_pickling`), it is larger: unpickling gives every River object a real
  ``__dict__`` (a fresh one keeps its attributes inline), and its own copies of strings (feature names,
  statuses) and numbers (settings) that live ones share. Pass ``dumps=plain_dumps`` to measure that.

**The stream.** :func:`spy_like_ticks` is a synthetic SPY with the real file's tick spacing (first 300k SPY
trades: 53% share a millisecond with the previous trade, median gap 0 ms, 95th percentile 577 ms, 99th 3 s)
and price moves (87% of trades at the previous price, one cent otherwise), so every time horizon's queue of
pending labels fills as it does on the real file. :func:`default_forecaster` is the worker's forecaster at
default settings (``new_forecaster``: horizons ``1s,10s,60s``, 90% intervals, drift detection on).
"""

from __future__ import annotations

import gc
import pickle  # nosec B403 # only states this process built are pickled and loaded back
import random
import tracemalloc
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tickcast.common.records import Lineage, Tick
from tickcast.predictor.forecaster import Forecaster, SymbolState
from tickcast.predictor.runtime import new_forecaster
from tickcast.predictor.settings import PredictorSettings
from tickcast.predictor.snapshot_pickling import dumps as snapshot_dumps

#: Gaps between consecutive SPY trades (ms) at the quantiles 0.05, 0.15, ..., 0.95 of the first 300k real ones,
#: plus the tail (99th, 99.9th percentile): a stream drawn from these is as busy as the real file.
SPY_GAPS_MS = (0, 0, 0, 0, 0, 1, 1, 4, 46, 577)
SPY_TAIL_GAPS_MS = (3_016, 42_543)
#: Share of real SPY trades at a new price (one cent away at $167).
SPY_MOVE_SHARE = 0.134
#: Untraced loads before a measure (:func:`measure`, :func:`measure_live`): ten are enough on CPython 3.11, measured.
WARM_UP_LOADS = 16


def spy_like_ticks(count: int, seed: int = 15, start_ms: int = 1_381_152_600_000) -> Iterator[Tick]:
    """``count`` synthetic SPY trades with the real file's spacing and cent moves (deterministic per seed).

    >>> ticks = list(spy_like_ticks(1000))
    >>> ticks[0].symbol, ticks[0].price, all(b.event_time >= a.event_time for a, b in zip(ticks, ticks[1:]))
    ('SPY', 167.41, True)
    """
    rng = random.Random(seed)  # nosec B311 # a reproducible test stream, not a secret
    cents, time_ms = 16_741, start_ms
    for _ in range(count):
        yield Tick("SPY", cents / 100, 100.0, time_ms)
        draw = rng.random()
        time_ms += SPY_TAIL_GAPS_MS[draw > 0.999] if draw > 0.99 else SPY_GAPS_MS[int(draw * 10)]
        if rng.random() < SPY_MOVE_SHARE:
            cents += rng.choice((-1, 1))


def default_forecaster() -> Forecaster:
    """The forecaster a worker runs at default settings (no environment is read)."""
    return new_forecaster(PredictorSettings(bootstrap_servers="127.0.0.1:1", worker_id="memory"))


def feed(forecaster: Forecaster, ticks: Iterable[Tick]) -> Forecaster:
    """Process ``ticks`` in order (offsets counted from 0, partition 0) and return the forecaster."""
    for offset, tick in enumerate(ticks):
        forecaster.process(tick, Lineage("ticks", 0, offset, tick.event_time), 0)
    return forecaster


@dataclass(frozen=True, slots=True)
class StateSize:
    """One symbol's cost: its snapshot's size and its restored state's bytes, by part (see the module doc)."""

    pickled_bytes: int
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def in_memory_bytes(self) -> int:
        return sum(self.parts.values())


def plain_dumps(state: object) -> bytes:
    """A plain pickle of ``state``, as snapshots were pickled before :mod:`tickcast.predictor.snapshot_pickling`."""
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def measure(
    state: SymbolState,
    rounds: int = 3,
    dumps: Callable[[object], bytes] = snapshot_dumps,
    checkpoints: int = 0,
) -> StateSize:
    """Pickled bytes and in-memory bytes by part of ``state`` restored from ``dumps`` (the snapshot writer's by
    default; ``state`` is left as it is: restored copies are measured), each copy snapshotted ``checkpoints``
    times by its new owner first (pickling must not make a state larger).

    >>> size = measure(feed(default_forecaster(), spy_like_ticks(200)).states["SPY"])
    >>> sorted(size.parts)[:3], 2_000 < size.in_memory_bytes < 60_000
    (['10s interval and error', '10s model', '10s pending labels'], True)
    """
    return measure_pickle(dumps(state), rounds, checkpoints)


def measure_pickle(data: bytes, rounds: int = 3, checkpoints: int = 0, warm_up_loads: int = WARM_UP_LOADS) -> StateSize:
    """:func:`measure` of the state pickled in ``data`` (a snapshot's bytes).

    The first few loads of a state in a process allocate more than later ones (CPython warms caches up), so
    the copy is loaded ``warm_up_loads`` times untraced first (a caller measuring many snapshots of one stream
    warms up once, then passes a few), and the smallest of ``rounds`` measures is kept (a global table that
    happens to grow during one of them is not the symbol's).
    """
    for _ in range(warm_up_loads):
        pickle.loads(data)  # nosec B301 # the caller's own snapshot
    with _traced():
        measures = [StateSize(len(data), _parts([_checkpointed(data, checkpoints)])) for _ in range(rounds)]
    return min(measures, key=lambda size: size.in_memory_bytes)


def measure_at_once(data: bytes, rounds: int = 3) -> int:
    """Bytes freed when the state pickled in ``data``, restored, is dropped whole: what the parts of
    :func:`measure_pickle` must add up to (a check of the part-by-part count, which the breakdown needs).

    >>> data = snapshot_dumps(feed(default_forecaster(), spy_like_ticks(200)).states["SPY"])
    >>> 5_000 < measure_at_once(data) < 20_000
    True

    That the parts add up to it is checked in ``tests/unit/testing/test_state_size.py``: compared here as well, a
    fresh interpreter sees up to ~200 B of allocator noise between the two.
    """
    for _ in range(WARM_UP_LOADS):
        pickle.loads(data)  # nosec B301 # the caller's own snapshot
    readings = array("q", [0, 0])  # C numbers: see _parts
    freed = []
    with _traced():
        for _ in range(rounds):
            holder = [pickle.loads(data)]  # nosec B301 # the caller's own snapshot
            gc.collect()
            readings[0] = tracemalloc.get_traced_memory()[0]
            holder.clear()
            gc.collect()
            readings[1] = tracemalloc.get_traced_memory()[0]
            freed.append(readings[0] - readings[1])
    return min(freed)


def measure_served(
    data: bytes, worker: Forecaster, ticks: Iterable[tuple[int, Tick]], warm_up_loads: int = 2
) -> StateSize:
    """Bytes by part of the state pickled in ``data`` once ``worker`` restored it and served ``ticks`` ((offset,
    tick) pairs of its symbol, following the snapshot): a state as a serving worker holds it.

    Tracing runs from the load on, so every object of the state is counted when it goes, and the lists and
    dicts that serving grows have the spare room they have as built (a snapshot loads them at their exact
    size). Tracing a whole stream from its first trade costs ~12x its untraced time; a few thousand trades
    renew every pending label and the last prediction, which is what serving changes in a restored state.

    >>> worker = default_forecaster()
    >>> ticks = list(spy_like_ticks(400))
    >>> data = snapshot_dumps(feed(default_forecaster(), ticks[:200]).states["SPY"])
    >>> size = measure_served(data, worker, enumerate(ticks[200:], start=200))
    >>> 2_000 < size.in_memory_bytes < 60_000, "SPY" in worker.states
    (True, False)
    """
    for _ in range(warm_up_loads):
        pickle.loads(data)  # nosec B301 # the caller's own snapshot
    with _traced():
        loaded: SymbolState = pickle.loads(data)  # nosec B301 # the caller's own snapshot
        symbol = loaded.last_prediction.symbol if loaded.last_prediction is not None else None
        if symbol is None:
            raise ValueError("a snapshot of a state that never served: nothing tells its symbol")
        worker.states[symbol] = loaded
        del loaded
        for offset, tick in ticks:
            worker.process(tick, Lineage("ticks", 0, offset, tick.event_time), 0)
        return StateSize(len(data), _parts([worker.states.pop(symbol)]))


@contextmanager
def frozen() -> Iterator[None]:
    """Freeze what exists now (after a full collection), for every measure run within (see :func:`_traced`).

    A measure freezes the heap so its collections look at the measured objects alone; unfreezing after each
    one makes the next start with a full collection of the whole heap (~0.1 s with a stream of trades in
    memory). A caller measuring many states freezes once around them all.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def _traced() -> Iterator[None]:
    """Trace allocations (unless the caller already does) with what exists now frozen: each collection then
    looks at the measured objects alone. Within :func:`frozen`, what is new since is frozen too, and left so."""
    started = not tracemalloc.is_tracing()
    owner = not gc.get_freeze_count()
    gc.collect()
    gc.freeze()
    if started:
        tracemalloc.start()
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()
        if owner:
            gc.unfreeze()


def short_state() -> SymbolState:
    """A symbol's state after a short stream at default settings: something to warm a process up with."""
    return feed(default_forecaster(), spy_like_ticks(2_000)).states.pop("SPY")


def measure_live(
    build: Callable[[], SymbolState],
    checkpoints: int = 1,
    warm_up: Callable[[], SymbolState] | None = short_state,
) -> StateSize:
    """Bytes by part of the state ``build`` returns, as built (``build`` runs traced; its state is dropped).

    It is measured after being pickled ``checkpoints`` times, as a worker holds it once it wrote that many
    snapshots (pickling must not make a state larger); its pickled bytes are the last one's (0 if none).

    A process's first objects of a class get room for more attributes than later ones (CPython 3.11 sizes
    them from what the class's objects hold so far): a state of the same kind from ``warm_up`` is loaded
    :data:`WARM_UP_LOADS` times first, as :func:`measure` does, as in a worker that holds other symbols.

    >>> size = measure_live(lambda: feed(default_forecaster(), spy_like_ticks(200)).states.pop("SPY"))
    >>> 2_000 < size.in_memory_bytes < 60_000
    True
    """
    if warm_up is not None:
        data = snapshot_dumps(warm_up())
        for _ in range(WARM_UP_LOADS):
            pickle.loads(data)  # nosec B301 # pickled just above
    started = not tracemalloc.is_tracing()
    # Empties the free lists (a float, tuple or dict reusing a block allocated before tracing is never counted),
    # and freezes what exists so far, not what is built: a frozen object is never collected, so a part of the
    # state in a reference cycle (a model and a bound method of its own) would not count when dropped. Freezing
    # the state itself made a live model measure ~1 KB less than its restored copy.
    gc.collect()
    gc.freeze()
    if started:
        tracemalloc.start()
    try:
        holder = [build()]
        pickled = 0  # the last snapshot's size (none taken: not known)
        for _ in range(checkpoints):
            pickled = len(snapshot_dumps(holder[0]))
        return StateSize(pickled, _parts(holder))
    finally:
        if started:
            tracemalloc.stop()
        gc.unfreeze()


def _checkpointed(data: bytes, checkpoints: int) -> SymbolState:
    """A state loaded from ``data``, then pickled ``checkpoints`` times as its new owner's checkpoints do."""
    state: SymbolState = pickle.loads(data)  # nosec B301 # pickled by this module's caller, in this process
    for _ in range(checkpoints):
        snapshot_dumps(state)
    return state


def _parts(holder: list[SymbolState]) -> dict[str, int]:
    """Drop the only copy (``holder[0]``: no local name keeps it alive) part by part, counting what each frees."""
    parts: dict[str, int] = {}
    # The two readings go into an array, which keeps them as C numbers: an int object holding the first one
    # would be allocated after it and still alive at the second, so each part read 28-32 B low (~0.4 KB in all
    # for 13 parts, against the whole state dropped at once).
    readings = array("q", [0, 0])

    def drop(name: str, target: object, *attributes: str) -> None:
        """Set ``target``'s ``attributes`` to None (none: let the copy go) and count what that frees."""
        gc.collect()
        readings[0] = tracemalloc.get_traced_memory()[0]
        for attribute in attributes:
            setattr(target, attribute, None)
        if not attributes:
            holder.clear()
        gc.collect()
        readings[1] = tracemalloc.get_traced_memory()[0]
        parts[name] = readings[0] - readings[1]

    drop("last prediction", holder[0], "last_prediction")
    drop("selection and drift", holder[0], "selection")
    # The shortest horizon's model and error are also referenced from the state itself (older snapshots).
    holder[0].model = holder[0].abs_error = None  # type: ignore[assignment]
    for horizon in holder[0].horizons:
        label = horizon.horizon.label
        drop(f"{label} model", horizon, "model")
        drop(f"{label} pending labels", horizon, "queue")
        drop(f"{label} interval and error", horizon, "interval", "abs_error")
    del horizon
    drop("features", holder[0], "features")
    drop("symbol state", holder)
    return parts
