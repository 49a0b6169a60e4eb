"""Scenario ``horizons``: what three horizons with intervals cost against one horizon without (issue 15).

In-process, no broker. The whole handler (decode, validate, features, models, encode) runs the same synthetic
ticks under two settings, interleaved over a few rounds so a shared machine's load hits both alike, and the
best round of each is kept: ``TICKCAST_HORIZONS=1t`` with no interval (the path before horizons) and the
default ``1s,10s,60s`` with 90% intervals. Target: the second at least 0.6x the first's throughput.

Memory per symbol at default settings is measured on the real trades file when it is present (its busiest
symbol, SPY, for its first ``memory_ticks`` trades) by :mod:`tickcast.testing.state_size`: pickled bytes
(what a snapshot holds) and tracemalloc's count of a state rebuilt from that pickle (what a worker holds after
a take-over), part by part (features, each horizon's model, pending labels and interval, selection and drift,
last prediction), and once more after its new owner snapshotted it (a snapshot must not make it grow).
Target: <= 20 KB.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from bench.core import Context, Row, ScenarioResult, at_least, at_most
from bench.model_cost import _records
from tickcast.common.records import Lineage
from tickcast.predictor.forecaster import SymbolState
from tickcast.predictor.horizons import DEFAULT_HORIZONS
from tickcast.predictor.runtime import TickHandler
from tickcast.predictor.settings import PredictorSettings
from tickcast.testing.data import DataMissing, DataSettings, trades_file
from tickcast.testing.state_size import StateSize, default_forecaster, measure, measure_live, snapshot_dumps

CONFIGS = {
    "1 horizon (1t), no interval": ("1t", 0.0),
    "3 horizons (1s,10s,60s) + 90% intervals": (DEFAULT_HORIZONS, 0.9),
}
ROUNDS = 3


def _rate(horizons: str, coverage: float, records: list[Any]) -> float:
    settings = PredictorSettings(
        bootstrap_servers="127.0.0.1:9092", ticks_topic="ticks", worker_id="bench",
        horizons=horizons, interval_coverage=coverage,
    )  # fmt: skip
    handle = TickHandler(settings).handle
    started = time.perf_counter()
    for key, value, lineage in records:
        handle(key, value, lineage)
    return len(records) / (time.perf_counter() - started)


def state_bytes(ticks: int) -> dict[str, Any] | None:
    """SPY's state after its first ``ticks`` real trades at default settings, by :mod:`tickcast.testing.state_size`:
    pickled bytes, and in-memory bytes by part as built (live) and as restored; None without the file."""
    try:
        path = trades_file(DataSettings())
    except DataMissing:
        return None
    from tickcast.common.records import Tick
    from tickcast.producer.columns import ColumnMapping
    from tickcast.producer.replay import read_ticks

    mapping = ColumnMapping(timezone="America/New_York")
    spy = (t for t in read_ticks(path, mapping) if isinstance(t, Tick) and t.symbol == "SPY")
    trades = list(itertools.islice(spy, ticks))
    largest, seen = 0, dict[str, Any]()
    # The worker stays alive while its symbol is measured, as a worker holding symbols does: what it shares with
    # all of them (the selection's configuration) is not one symbol's cost.
    workers = []

    def build() -> SymbolState:
        nonlocal largest
        forecaster = default_forecaster()
        workers.append(forecaster)
        for offset, tick in enumerate(trades):
            forecaster.process(tick, Lineage("ticks", 0, offset, tick.event_time), 0)
            if offset % 5000 == 0:
                largest = max(largest, len(snapshot_dumps(forecaster.states["SPY"])))
        state = forecaster.states.pop("SPY")
        seen["restored"] = measure(state)  # from its pickle, before measure_live takes the state apart
        seen["restored_snapshotted_bytes"] = measure(state, checkpoints=1).in_memory_bytes  # by its new owner
        seen["pending"] = [len(h.queue.pending) for h in state.horizons]
        seen["challengers"] = sorted(state.selection.challengers) if state.selection else []
        return state

    live = measure_live(build)
    restored: StateSize = seen.pop("restored")
    return {"ticks": len(trades), "pickled_bytes": live.pickled_bytes,
            "largest_pickled_bytes": max(largest, live.pickled_bytes),
            "live_bytes": live.in_memory_bytes, "live_parts": live.parts,
            "tracemalloc_bytes": restored.in_memory_bytes, "parts": restored.parts, **seen}  # fmt: skip


def run(context: Context) -> ScenarioResult:
    options = context.options
    _, records = _records(options.model_ticks, options.symbols, options.partitions)
    rates: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(ROUNDS):
        for name, (horizons, coverage) in CONFIGS.items():
            rates[name].append(_rate(horizons, coverage, records))
    best = {name: max(values) for name, values in rates.items()}
    one, three = best.values()
    rows: list[Row] = [Row(f"{name}: handler", round(rate), "ticks/s") for name, rate in best.items()]
    rows.append(at_least("3 horizons + intervals / 1 horizon", round(three / one, 3), "x", 0.6))
    memory = state_bytes(options.horizon_memory_ticks)
    notes = []
    if memory is None:
        notes.append("memory per symbol not measured: the real trades file is missing")
    else:
        rows.append(at_most("SPY state, pickled (largest seen)", memory["largest_pickled_bytes"], "bytes", 20_000))
        rows.append(at_most("SPY state, in memory as built (tracemalloc)", memory["live_bytes"], "bytes", 20_000))
        rows.append(
            at_most("SPY state, in memory restored (tracemalloc)", memory["tracemalloc_bytes"], "bytes", 20_000)
        )
        rows.append(
            at_most(
                "SPY state, in memory restored then snapshotted", memory["restored_snapshotted_bytes"], "bytes", 20_000
            )
        )
        rows += [
            Row(f"SPY state restored: {part}", count, f"bytes (as built: {memory['live_parts'][part]})")
            for part, count in memory["parts"].items()
        ]
    return ScenarioResult(
        name="horizons",
        title="Horizons: 3 horizons + intervals vs 1 horizon without (in-process handler, one core)",
        inputs={"ticks": options.model_ticks, "symbols": options.symbols, "rounds": ROUNDS},
        metrics={"rates": rates, "best": best, "ratio": three / one, "memory": memory},
        rows=rows,
        notes=notes,
    )
