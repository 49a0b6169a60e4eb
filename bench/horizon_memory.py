"""Memory per symbol over the real stream, at its largest (issue 15's <= 20 KB target), for scenario ``horizons``.

A state's size moves with the stream: how many forecasts wait for their label on each horizon (with the
challengers' forecasts on the shortest one), whether drift started a fresh challenger, what the selection
holds. One point says little (real SPY measured 0.9 KB apart 50 trades away), so each of the file's symbols
is measured at many points of one pass over the file's trades up to ``SPY``'s ``ticks``-th, one worker at
default settings holding them all:

- **restored**: the snapshot taken at each point, loaded as a new owner loads it, dropped part by part
  (:func:`tickcast.testing.state_size.measure_pickle`; the parts add up to the whole, counted to the byte).
  Points: :data:`GRID_POINTS` spread over each symbol's trades, and before each one a cluster every
  :data:`CLUSTER_STEP` trades over the :data:`CLUSTER_SPAN` trades before it (the size swings within a hundred
  trades: the shortest horizon's queue fills and empties in about a second).
- **as served**: at the :data:`SERVED_POINTS` grid points where the restored state was largest, the snapshot
  :data:`SERVED_TRADES` trades earlier, restored under tracing and served up to the point
  (:func:`~tickcast.testing.state_size.measure_served`): lists and dicts have the spare room serving gives
  them, which a snapshot drops. Tracing a whole build from the first trade (what this measured before) costs
  ~12x its untraced time, ~2 minutes for SPY alone, and gave one point.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

from tickcast.common.records import Lineage, Tick
from tickcast.testing.data import DataMissing, DataSettings, trades_file
from tickcast.testing.state_size import (
    WARM_UP_LOADS,
    StateSize,
    default_forecaster,
    frozen,
    measure_pickle,
    measure_served,
    snapshot_dumps,
)

GRID_POINTS = 24
CLUSTER_SPAN = 100
CLUSTER_STEP = 20
SERVED_POINTS = 4
SERVED_TRADES = 2_000


def file_trades(spy_ticks: int) -> list[Tick] | None:
    """The real file's trades, every symbol, up to SPY's ``spy_ticks``-th; None without the file."""
    try:
        path = trades_file(DataSettings())
    except DataMissing:
        return None
    from tickcast.producer.columns import ColumnMapping
    from tickcast.producer.replay import read_ticks

    trades: list[Tick] = []
    spy = 0
    for tick in read_ticks(path, ColumnMapping(timezone="America/New_York")):
        if isinstance(tick, Tick):
            trades.append(tick)
            spy += tick.symbol == "SPY"
            if spy >= spy_ticks:
                break
    return trades


def points_of(count: int) -> tuple[list[int], set[int]]:
    """A symbol's grid points (its ``count``-th trade last) and every point measured (clusters included).

    >>> grid, every = points_of(2_400)
    >>> grid[:2], grid[-1], len(grid), len(every), sorted(every)[:3]
    ([100, 200], 2400, 24, 120, [20, 40, 60])
    """
    step = max(1, count // GRID_POINTS)
    grid = sorted({*range(step, count + 1, step), count})
    cluster = range(-CLUSTER_SPAN, 1, CLUSTER_STEP)
    return grid, {point + back for point in grid for back in cluster if point + back > 0}


def state_sizes(spy_ticks: int) -> dict[str, Any] | None:
    """Per symbol: restored bytes at every point, and as-served bytes at the worst grid points (module doc)."""
    trades = file_trades(spy_ticks)
    if trades is None:
        return None
    counts = Counter(tick.symbol for tick in trades)
    plans = {symbol: points_of(count) for symbol, count in counts.items()}
    # The snapshot SERVED_TRADES before each grid point, for the as-served measure.
    served_from = {symbol: {max(1, p - SERVED_TRADES): p for p in grid} for symbol, (grid, _) in plans.items()}
    worker = default_forecaster()
    snapshots: dict[tuple[str, int], bytes] = {}
    offsets: dict[str, list[tuple[int, Tick]]] = defaultdict(list)
    seen: Counter[str] = Counter()
    for offset, tick in enumerate(trades):
        worker.process(tick, Lineage("ticks", 0, offset, tick.event_time), 0)
        symbol = tick.symbol
        seen[symbol] += 1
        offsets[symbol].append((offset, tick))
        if seen[symbol] in plans[symbol][1] or seen[symbol] in served_from[symbol]:
            snapshots[symbol, seen[symbol]] = snapshot_dumps(worker.states[symbol])
    del trades
    # The workers measured against stay alive, as a worker does while it holds symbols: what it shares with
    # all of them (the selection's configuration, feature names) is not one symbol's cost.
    with frozen():
        return _measured(plans, snapshots, offsets, counts)


def _measured(
    plans: dict[str, tuple[list[int], set[int]]],
    snapshots: dict[tuple[str, int], bytes],
    offsets: dict[str, list[tuple[int, Tick]]],
    counts: Counter[str],
) -> dict[str, Any]:
    measure_pickle(next(iter(snapshots.values())), rounds=1, warm_up_loads=WARM_UP_LOADS)
    results: dict[str, Any] = {}
    for symbol, (grid, every) in plans.items():
        restored = {point: measure_pickle(snapshots[symbol, point], rounds=1, warm_up_loads=1) for point in every}
        worst = sorted(grid, key=lambda point: restored[point].in_memory_bytes)[-SERVED_POINTS:]
        served = {}
        for point in worst:
            start = max(1, point - SERVED_TRADES)
            following = offsets[symbol][start:point]  # the trades after the snapshot's, up to the point
            served[point] = measure_served(snapshots[symbol, start], default_forecaster(), following)
        top = max(restored, key=lambda point: restored[point].in_memory_bytes)
        restored[top] = min(restored[top], measure_pickle(snapshots[symbol, top]), key=_bytes)  # 3 rounds
        results[symbol] = {
            "trades": counts[symbol],
            "restored": _summary(restored),
            "served": _summary(served),
            "largest_pickled_bytes": max(size.pickled_bytes for size in restored.values()),
        }
    return results


def _bytes(size: StateSize) -> int:
    return size.in_memory_bytes


def _summary(sizes: dict[int, StateSize]) -> dict[str, Any]:
    """Min, median and max bytes over the points, the point of the max and its parts."""
    values = [size.in_memory_bytes for size in sizes.values()]
    top = max(sizes, key=lambda point: sizes[point].in_memory_bytes)
    return {
        "points": len(values),
        "min": min(values),
        "median": round(statistics.median(values)),
        "max": max(values),
        "max_at": top,
        "parts": sizes[top].parts,
        "bytes_by_point": dict(sorted((point, size.in_memory_bytes) for point, size in sizes.items())),
    }
