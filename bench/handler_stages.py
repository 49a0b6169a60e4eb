"""Where a tick's CPU goes inside the worker, stage by stage, in-process and without a broker (not in ``make bench``).

``python -m bench.handler_stages`` replays synthetic ticks (the configuration of issue 18's target: the
default model, one horizon ``1t``, no interval, no challengers, no drift detector) through the worker's
per-tick path with a clock read between the stages, and prints µs per tick of each: decode, validation,
features, model, the rest of the forecaster, the prediction record, encode, the handler's counters, the
batch loop's per-tick bookkeeping, and the produce call (librdkafka queues to an unreachable broker,
so no delivery report is served). Beside them, the minimal loop's (``bench/minimal_loop.py``) decode,
step and encode over the same records.

Some stages are timed in loops of their own over the values the handler saw (features, model, record), as
they sit inside :meth:`Forecaster.process`; "forecaster, rest" is what is left of it. The clock reads cost
is measured and taken off. ``time.process_time`` is not fine enough for one stage of one tick, so this
uses ``perf_counter_ns``; on a loaded machine run more ``--rounds`` (each stage keeps its best round).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

from bench.handler_probe import _records
from bench.peers.recipe import Recipe, Symbol
from tickcast.common.records import Lineage, Prediction
from tickcast.predictor.features import SymbolFeatures
from tickcast.predictor.intake import read_tick
from tickcast.predictor.model_calls import learn_one, predict_one
from tickcast.predictor.output import OutputProducer
from tickcast.predictor.publishing import OutcomePublisher
from tickcast.predictor.runtime import Predicted, TickHandler
from tickcast.predictor.settings import PredictorSettings

STAGES = (
    "decode",
    "validate",
    "forecaster: features",
    "forecaster: model",
    "forecaster: prediction record",
    "forecaster: rest",
    "encode",
    "handler counters and outcome",
    "batch loop bookkeeping",
    "publish (produce call)",
)


def _settings() -> PredictorSettings:
    return PredictorSettings(
        bootstrap_servers="127.0.0.1:1", worker_id="probe", horizons="1t", interval_coverage=0.0,
        challengers="", drift_detector="off", output_queue_max_messages=2_000_000,
    )  # fmt: skip


def _clock_cost() -> float:
    clock = time.perf_counter_ns
    started = clock()
    for _ in range(100_000):
        clock()
    return (clock() - started) / 100_000


def handler_round(records: list[Any], warmup: int) -> tuple[dict[str, float], list[Prediction]]:
    """One pass of the per-tick path, a clock read between its stages: ns per tick by stage, and the predictions."""
    settings = _settings()
    handler = TickHandler(settings)
    # An unreachable broker: produce() only queues, and "log_level" 0 keeps librdkafka's connect errors quiet.
    output = OutputProducer(
        settings, 5, **{"queue.buffering.max.messages": 2_000_000, "message.timeout.ms": 600_000, "log_level": 0}
    )
    publisher = OutcomePublisher(output, "predictions", "dlq", "probe", handler.counters)
    for key, value, lineage in records[:warmup]:
        handler.handle(key, value, lineage)
    timed = records[warmup:]
    codec, limits, max_bytes = handler.tick_codec, handler.limits, handler.max_bytes
    counters = handler.counters
    clock = time.perf_counter_ns
    totals = dict.fromkeys(("decode", "read_tick", "process", "encode", "handle", "loop", "publish"), 0)
    ticks: list[Any] = []
    gc.collect()
    gc.freeze()
    own_latency, changed = counters.own_latency_seconds.observe, set()
    for key, value, _ in timed:
        now_ms = time.time_ns() // 1_000_000
        t0 = clock()
        codec.decode_values(value)
        t1 = clock()
        tick = read_tick(key, value, codec, now_ms, limits, max_bytes)
        t2 = clock()
        ticks.append(tick)
        totals["decode"] += t1 - t0
        totals["read_tick"] += t2 - t1
    # The handler itself, then its stages replayed on a twin handler over the same ticks.
    twin = TickHandler(settings)
    for key, value, lineage in records[:warmup]:
        twin.handle(key, value, lineage)
    twin_process, twin_encode = twin.forecaster.process, twin.prediction_codec.encode_object
    predictions: list[Prediction] = []
    for tick, (_, _, lineage) in zip(ticks, timed, strict=True):
        now_us = time.time_ns() // 1000
        t0 = clock()
        prediction = twin_process(tick, lineage, now_us)
        t1 = clock()
        twin_encode(prediction)
        t2 = clock()
        predictions.append(prediction)
        totals["process"] += t1 - t0
        totals["encode"] += t2 - t1
    horizon = -1
    for key, value, lineage in timed:
        t0 = clock()
        outcome = handler.handle(key, value, lineage)
        t1 = clock()
        publisher.publish(outcome, key, value, lineage)
        t2 = clock()
        # The batch loop's own per tick: the replay check, the lineage, the own-latency stamp, changed symbols.
        _ = lineage.offset <= horizon and key
        Lineage(lineage.topic, lineage.partition, lineage.offset, lineage.produced_at_ms)
        own_latency(0.001)
        if isinstance(outcome, Predicted):
            changed.add(outcome.symbol)
        t3 = clock()
        totals["handle"] += t1 - t0
        totals["publish"] += t2 - t1
        totals["loop"] += t3 - t2
    output.close(0)
    n = len(timed)
    return {name: value / n for name, value in totals.items()}, predictions


def _timed(loop: Callable[[], None], n: int) -> float:
    started = time.perf_counter_ns()
    loop()
    return (time.perf_counter_ns() - started) / n


def parts_round(records: list[Any], warmup: int, predictions: list[Prediction]) -> dict[str, float]:
    """Features, model and record construction, each alone over the values the handler saw: ns per tick."""
    settings = _settings()
    handler = TickHandler(settings)
    ticks = [handler.tick_codec.decode_values(value) for _, value, _ in records]
    prices = [(t[0], t[1], t[3]) for t in ticks]
    features: dict[str, SymbolFeatures] = {}
    for symbol, price, at in prices[:warmup]:
        features.setdefault(symbol, SymbolFeatures()).update(price, at)
    timed = prices[warmup:]
    seen: list[tuple[str, dict[str, float], float]] = []

    def features_loop() -> None:
        for symbol, price, at in timed:
            state = features[symbol]
            update = state.apply(state.assess(price), at)
            seen.append((symbol, update.features, update.return_bps or 0.0))

    n = len(timed)
    result = {"features": _timed(features_loop, n)}
    models = {symbol: handler.forecaster.spec.build() for symbol in features}
    pending: dict[str, dict[str, float]] = {}

    def model_loop() -> None:
        for symbol, x, y in seen:
            model = models[symbol]
            last = pending.get(symbol)
            if last is not None:
                learn_one(model, last, y)
            predict_one(model, x)
            pending[symbol] = x

    result["model"] = _timed(model_loop, n)

    def record_loop() -> None:
        for p in predictions:
            Prediction(
                p.symbol, p.event_time, p.last_price, p.predicted_return_bps, p.predicted_price, p.horizon_ticks,
                p.status, p.model_name, p.model_version, p.ticks_learned, p.source_topic, p.source_partition,
                p.source_offset, p.tick_produced_at, p.predicted_at, p.worker, p.abs_error_ewm_bps, p.flags,
                p.model_recipe_version, p.state_origin, p.state_since_offset, p.state_snapshot_generation,
                p.horizon_ms, p.target_time, p.interval_lo_bps, p.interval_hi_bps, p.nominal_coverage,
                p.empirical_coverage,
                [type(f)(*(getattr(f, s) for s in type(f).__slots__)) for f in p.forecasts],
            )  # fmt: skip

    result["record"] = _timed(record_loop, len(predictions))
    return result


def minimal_round(records: list[Any], warmup: int) -> dict[str, float]:
    """The minimal loop's decode, step (features, model, record dict, fastavro encode) over the same records."""
    recipe = Recipe(_settings())
    symbols: dict[str, Symbol] = {}
    decode, step = recipe.decode, recipe.step
    for _, value, lineage in records[:warmup]:
        tick = decode(value)
        state = symbols.get(tick["symbol"]) or symbols.setdefault(tick["symbol"], recipe.new_symbol())
        step(state, tick, "ticks", lineage.partition, lineage.offset, lineage.produced_at_ms)
    timed = records[warmup:]
    clock = time.perf_counter_ns
    totals = {"decode": 0, "step": 0}
    for _, value, lineage in timed:
        t0 = clock()
        tick = decode(value)
        t1 = clock()
        state = symbols[tick["symbol"]]
        step(state, tick, "ticks", lineage.partition, lineage.offset, lineage.produced_at_ms)
        t2 = clock()
        totals["decode"] += t1 - t0
        totals["step"] += t2 - t1
    return {name: value / len(timed) for name, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument("--symbols", type=int, default=50)
    args = parser.parse_args()
    _, records = _records(args.warmup + args.ticks, args.symbols)
    clock_ns = _clock_cost()
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        handler, predictions = handler_round(records, args.warmup)
        parts = parts_round(records, args.warmup, predictions)
        minimal = minimal_round(records, args.warmup)
        row = {
            "decode": handler["decode"] - clock_ns,
            "validate": handler["read_tick"] - handler["decode"],
            "forecaster: features": parts["features"],
            "forecaster: model": parts["model"],
            "forecaster: prediction record": parts["record"],
            "forecaster: rest": handler["process"] - clock_ns - parts["features"] - parts["model"] - parts["record"],
            "encode": handler["encode"] - clock_ns,
            "handler counters and outcome": handler["handle"]
            - handler["read_tick"]
            - handler["process"]
            - handler["encode"]
            + clock_ns,
            "batch loop bookkeeping": handler["loop"] - clock_ns,
            "publish (produce call)": handler["publish"] - clock_ns,
            "handler total (handle)": handler["handle"] - clock_ns,
            "minimal loop: decode": minimal["decode"] - clock_ns,
            "minimal loop: step (features, model, record, encode)": minimal["step"] - clock_ns,
        }
        for name, value in row.items():
            best[name] = min(best.get(name, value), value)
        print(", ".join(f"{name} {value / 1000:.2f}" for name, value in row.items()), flush=True)
    print(f"\nbest of {args.rounds} rounds, µs per tick (clock read {clock_ns:.0f} ns taken off):")
    for name, value in best.items():
        print(f"  {name:55s} {value / 1000:7.2f}")


if __name__ == "__main__":
    main()
