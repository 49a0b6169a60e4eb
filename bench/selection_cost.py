"""Scenario 'selection': what per-symbol champion/challenger selection and drift detection cost per tick.

The same synthetic ticks through the whole handler (:meth:`TickHandler.handle`, what a worker does per
tick) four ways: the champion alone (no drift detector, no challenger), with the default ADWIN detector,
with two challengers scored on every tick, and with them scored on a quarter of ticks. The ratio the issue
asks for is throughput with two challengers over throughput with the champion only, from one run.
Rounds are interleaved (each configuration once per round, best round kept) so load drift hits all alike, and
timed in CPU seconds of this process: in-process and single-threaded, that is the cost, and unlike wall time it
does not grow with the other jobs on a shared machine (wall time gave 522 µs for the champion alone at load 15).
"""

from __future__ import annotations

import time
from typing import Any

from bench.core import BenchError, Context, Row, ScenarioResult
from bench.model_cost import TOPIC, _records
from tickcast.common.records import Lineage
from tickcast.predictor.runtime import TickHandler
from tickcast.predictor.settings import PredictorSettings

CHAMPION = "linear"
CHALLENGERS = "pa,mean-reversion"
ROUNDS = 3

#: name -> settings beyond the champion's.
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "champion only": {"drift_detector": "off"},
    "champion + ADWIN": {"drift_detector": "adwin"},
    "champion + Page-Hinkley (default)": {"drift_detector": "page-hinkley"},
    "champion + 2 challengers + ADWIN": {"challengers": CHALLENGERS, "drift_detector": "adwin"},
    "champion + 2 challengers scored on 25% + ADWIN": {
        "challengers": CHALLENGERS,
        "challenger_score_fraction": 0.25,
        "drift_detector": "adwin",
    },
}


def _seconds(extra: dict[str, Any], records: list[tuple[bytes, bytes, Lineage]]) -> float:
    settings = PredictorSettings(
        bootstrap_servers="127.0.0.1:9092", ticks_topic=TOPIC, model=CHAMPION, worker_id="bench", **extra
    )
    handler = TickHandler(settings)
    handle = handler.handle
    started = time.process_time()
    for key, value, lineage in records:
        handle(key, value, lineage)
    elapsed = time.process_time() - started
    if handler.counters.predictions_out != len(records):
        raise BenchError(f"{extra}: {len(records) - handler.counters.predictions_out} ticks were dead-lettered")
    return elapsed


def run(context: Context) -> ScenarioResult:
    options = context.options
    _, records = _records(options.model_ticks, options.symbols, options.partitions)
    best = {name: float("inf") for name in CONFIGURATIONS}
    for _ in range(ROUNDS):
        for name, extra in CONFIGURATIONS.items():
            best[name] = min(best[name], _seconds(extra, records))
    n = len(records)
    by_configuration = {
        name: {"us_per_tick": round(s / n * 1e6, 1), "ticks_per_s": round(n / s)} for name, s in best.items()
    }
    ratio = best["champion only"] / best["champion + 2 challengers + ADWIN"]
    rows = [Row(f"{name}: handler per tick", result["us_per_tick"], "µs") for name, result in by_configuration.items()]
    rows.append(Row("throughput with 2 challengers / champion only", round(ratio, 3), "x"))
    return ScenarioResult(
        name="selection",
        title="Model selection cost: champion alone vs drift detection and two challengers (CPU time, in-process)",
        inputs={
            "ticks": n,
            "symbols": options.symbols,
            "champion": CHAMPION,
            "challengers": CHALLENGERS,
            "rounds": ROUNDS,
        },
        metrics={"by_configuration": by_configuration, "throughput_ratio_two_challengers": round(ratio, 3)},
        rows=rows,
    )
