"""Scenario 6, model cost: what each registered model costs per tick, in-process.

Two loops per model over the same synthetic ticks (``model_ticks`` over ``symbols`` symbols, time
stamped near now so none is rejected): the whole handler (:meth:`TickHandler.handle`: decode,
validate, features, model, encode; what a worker does per tick) and the forecaster alone
(features + model). With ``--models-through-worker`` each model also drains a backlog in a worker.
"""

from __future__ import annotations

import time
from typing import Any

from bench.core import BenchError, Context, Row, ScenarioResult
from bench.throughput import drain
from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import TICK_SCHEMA_FILE
from tickcast.common.records import Lineage, Tick
from tickcast.common.topics import partition_for, symbol_key
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.models import MODELS, model_spec
from tickcast.predictor.runtime import TickHandler
from tickcast.predictor.settings import PredictorSettings
from tickcast.producer.synthetic import SyntheticFeed, symbol_names

TOPIC = "ticks"


def _records(ticks: int, symbols: int, partitions: int) -> tuple[list[Tick], list[tuple[bytes, bytes, Lineage]]]:
    clock = iter(range(time.time_ns() // 1_000_000 - ticks, 2**62))
    feed = SyntheticFeed(symbol_names(symbols), seed=5, clock_ms=lambda: next(clock))
    codec = AvroCodec(open_schema_store(None), f"{TOPIC}-value", load_schema(TICK_SCHEMA_FILE))
    decoded = feed.take(ticks)
    offsets: dict[int, int] = {}
    encoded = []
    for tick in decoded:
        key = symbol_key(tick.symbol)
        partition = partition_for(key, partitions)
        offsets[partition] = offsets.get(partition, -1) + 1
        encoded.append(
            (key, codec.encode(tick.to_avro()), Lineage(TOPIC, partition, offsets[partition], tick.event_time))
        )
    return decoded, encoded


def measure(name: str, ticks: list[Tick], records: list[tuple[bytes, bytes, Lineage]]) -> dict[str, Any]:
    settings = PredictorSettings(bootstrap_servers="127.0.0.1:9092", ticks_topic=TOPIC, model=name, worker_id="bench")
    handler = TickHandler(settings)
    handle = handler.handle
    started = time.perf_counter()
    for key, value, lineage in records:
        handle(key, value, lineage)
    handler_s = time.perf_counter() - started
    if handler.counters.predictions_out != len(records):
        raise BenchError(f"model {name}: {len(records) - handler.counters.predictions_out} ticks were dead-lettered")

    forecaster = Forecaster(model_spec(name), worker="bench")
    process = forecaster.process
    started = time.perf_counter()
    for tick, (_, _, lineage) in zip(ticks, records, strict=True):
        process(tick, lineage, lineage.produced_at_ms * 1000)
    forecaster_s = time.perf_counter() - started
    n = len(records)
    return {
        "model": name,
        "ticks": n,
        "handler_us_per_tick": round(handler_s / n * 1e6, 1),
        "handler_ticks_per_s": round(n / handler_s),
        "forecaster_us_per_tick": round(forecaster_s / n * 1e6, 1),
        "forecaster_ticks_per_s": round(n / forecaster_s),
    }


def run(context: Context) -> ScenarioResult:
    options = context.options
    ticks, records = _records(options.model_ticks, options.symbols, options.partitions)
    by_model = {name: measure(name, ticks, records) for name in MODELS}
    rows: list[Row] = []
    for name, result in by_model.items():
        rows.append(Row(f"{name}: handler per tick", result["handler_us_per_tick"], "µs"))
        rows.append(Row(f"{name}: forecaster per tick", result["forecaster_us_per_tick"], "µs"))
    if options.models_through_worker:
        for name in MODELS:
            run_ = drain(context, "worker", ticks=options.worker_model_ticks, model=name)
            by_model[name]["worker_rate_per_s"] = run_["rate_per_s"]
            rows.append(Row(f"{name}: worker drain rate", run_["rate_per_s"], "ticks/s"))
    return ScenarioResult(
        name="models",
        title="Model cost: per-tick time of each registered model (in-process, one core)",
        inputs={
            "ticks": options.model_ticks,
            "symbols": options.symbols,
            "models": list(MODELS),
            "through_worker": options.models_through_worker,
            "worker_backlog_ticks": options.worker_model_ticks if options.models_through_worker else None,
        },
        metrics={"by_model": by_model},
        rows=rows,
    )
