"""Scenario ``horizons``: what three horizons with intervals cost against one horizon without (issue 15).

In-process, no broker. The whole handler (decode, validate, features, models, encode) runs the same synthetic
ticks under two settings, interleaved over a few rounds so a shared machine's load hits both alike, and the
best round of each is kept: ``TICKCAST_HORIZONS=1t`` with no interval (the path before horizons) and the
default ``1s,10s,60s`` with 90% intervals. Target: the second at least 0.6x the first's throughput.

Memory per symbol at default settings is measured on the real trades file when it is present, at many points
of its stream, for each of its symbols (:mod:`bench.horizon_memory`): the largest state is held to <= 20 KB.
"""

from __future__ import annotations

import time
from typing import Any

from bench.core import Context, Row, ScenarioResult, at_least, at_most
from bench.horizon_memory import state_sizes
from bench.model_cost import _records
from tickcast.predictor.horizons import DEFAULT_HORIZONS
from tickcast.predictor.runtime import TickHandler
from tickcast.predictor.settings import PredictorSettings

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


def memory_rows(memory: dict[str, Any]) -> list[Row]:
    """Per symbol, the largest state restored and as served, with min/median and the trade of the max; then the
    largest of all against 20 KB, and its parts."""
    rows: list[Row] = []
    for symbol, found in memory.items():
        for kind in ("restored", "served"):
            s = found[kind]
            spread = f"bytes (min {s['min']:,}, median {s['median']:,}; at trade {s['max_at']:,}"
            spread += f" of {found['trades']:,})"
            rows.append(Row(f"{symbol} state {kind}, largest of {s['points']} points", s["max"], spread))
    kind, symbol = max(
        ((k, symbol) for symbol in memory for k in ("restored", "served")), key=lambda ks: memory[ks[1]][ks[0]]["max"]
    )
    worst = memory[symbol][kind]
    rows.append(at_most("largest state of any symbol, restored or served", worst["max"], "bytes", 20_000))
    pickled = max(found["largest_pickled_bytes"] for found in memory.values())
    rows.append(at_most("largest snapshot (pickled)", pickled, "bytes", 20_000))
    where = f"{symbol} {kind} at trade {worst['max_at']:,}"
    rows += [Row(f"  {where}: {part}", count, "bytes") for part, count in worst["parts"].items()]
    return rows


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
    memory = state_sizes(options.horizon_memory_ticks)
    notes = []
    if memory is None:
        notes.append("memory per symbol not measured: the real trades file is missing")
    else:
        rows += memory_rows(memory)
    return ScenarioResult(
        name="horizons",
        title="Horizons: 3 horizons + intervals vs 1 horizon without (in-process handler, one core)",
        inputs={"ticks": options.model_ticks, "symbols": options.symbols, "rounds": ROUNDS},
        metrics={"rates": rates, "best": best, "ratio": three / one, "memory": memory},
        rows=rows,
        notes=notes,
    )
