"""Where a tick's CPU goes inside the worker, stage by stage, in-process and without a broker (not in ``make bench``).

``python -m bench.handler_stages`` replays synthetic ticks (the configuration of issue 18's target: the
default model, one horizon ``1t``, no interval, no challengers, no drift detector) through each stage of
the worker's per-tick path and prints µs of CPU per tick of each: decode, validation, features, model, the
rest of the forecaster, the prediction record, encode, the handler's counters, the batch loop's per-tick
bookkeeping, and the produce call (librdkafka queues to an unreachable broker, so no delivery report is
served). Beside them, the minimal loop's (``bench/minimal_loop.py``) decode and step over the same records.

Each stage is a loop of its own over all ticks, timed with this process's CPU time (``process_time_ns``),
so another job taking the core does not count; per-tick clock reads would. Features, model and record are
timed alone over the values the handler saw, as they sit inside :meth:`Forecaster.process`; "forecaster:
rest" is what is left of it; "handler counters, outcome, interleaving" is what ``handle`` costs beyond its
stages run apart (its counters and outcome, and the caches its stages share when they run together). Each
stage keeps its best of ``--rounds``: on a shared machine, compare two versions round by round.
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
    "handler counters, outcome, interleaving",
    "batch loop bookkeeping",
    "publish (produce call)",
)


def _settings() -> PredictorSettings:
    return PredictorSettings(
        bootstrap_servers="127.0.0.1:1", worker_id="probe", horizons="1t", interval_coverage=0.0,
        challengers="", drift_detector="off", output_queue_max_messages=2_000_000,
    )  # fmt: skip


def _cpu_ns_per_tick(loop: Callable[[], object], n: int) -> float:
    """CPU nanoseconds per tick of ``loop`` (this process's CPU time: another job on the core does not count)."""
    started = time.process_time_ns()
    loop()
    return (time.process_time_ns() - started) / n


def handler_round(records: list[Any], warmup: int) -> tuple[dict[str, float], list[Prediction]]:
    """Each stage of the per-tick path as a loop of its own over the same ticks: ns per tick, and the predictions.

    The stages that change state (the forecaster, the whole handler) run on twin handlers warmed up alike.
    """
    settings = _settings()
    handler, twin = TickHandler(settings), TickHandler(settings)
    # An unreachable broker: produce() only queues, and "log_level" 0 keeps librdkafka's connect errors quiet.
    output = OutputProducer(
        settings, 5, **{"queue.buffering.max.messages": 2_000_000, "message.timeout.ms": 600_000, "log_level": 0}
    )
    publisher = OutcomePublisher(output, "predictions", "dlq", "probe", handler.counters)
    for key, value, lineage in records[:warmup]:
        handler.handle(key, value, lineage)
        twin.handle(key, value, lineage)
    timed = records[warmup:]
    n = len(timed)
    codec, limits, max_bytes = handler.tick_codec, handler.limits, handler.max_bytes
    now_ms = time.time_ns() // 1_000_000
    ticks = [read_tick(key, value, codec, now_ms, limits, max_bytes) for key, value, _ in timed]
    gc.collect()
    gc.freeze()
    result: dict[str, float] = {}
    result["decode"] = _cpu_ns_per_tick(lambda: [codec.decode_values(value) for _, value, _ in timed], n)
    result["read_tick"] = _cpu_ns_per_tick(
        lambda: [read_tick(key, value, codec, now_ms, limits, max_bytes) for key, value, _ in timed], n
    )
    process, encode = twin.forecaster.process, twin.prediction_codec.encode_object
    now_us = now_ms * 1000
    predictions: list[Prediction] = []
    result["process"] = _cpu_ns_per_tick(
        lambda: predictions.extend(
            process(tick, lineage, now_us) for tick, (_, _, lineage) in zip(ticks, timed, strict=True)
        ),
        n,
    )
    result["encode"] = _cpu_ns_per_tick(lambda: [encode(p) for p in predictions], n)
    handle = handler.handle
    outcomes: list[Any] = []
    result["handle"] = _cpu_ns_per_tick(
        lambda: outcomes.extend(handle(key, value, lineage) for key, value, lineage in timed), n
    )
    publish = publisher.publish
    result["publish"] = _cpu_ns_per_tick(
        lambda: [publish(o, k, v, lineage) for o, (k, v, lineage) in zip(outcomes, timed, strict=True)], n
    )
    own_latency, changed, horizon = handler.counters.own_latency_seconds.observe, set(), -1

    def loop() -> None:
        # The batch loop's own per tick: the replay check, the lineage, the own-latency stamp, changed symbols.
        for outcome, (key, _, lineage) in zip(outcomes, timed, strict=True):
            _ = lineage.offset <= horizon and key
            Lineage(lineage.topic, lineage.partition, lineage.offset, lineage.produced_at_ms)
            own_latency(0.001)
            if isinstance(outcome, Predicted):
                changed.add(outcome.symbol)

    result["loop"] = _cpu_ns_per_tick(loop, n)
    output.close(0)
    gc.unfreeze()
    return result, predictions


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
    result = {"features": _cpu_ns_per_tick(features_loop, n)}
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

    result["model"] = _cpu_ns_per_tick(model_loop, n)

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

    result["record"] = _cpu_ns_per_tick(record_loop, len(predictions))
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
    n = len(timed)
    decoded = [decode(value) for _, value, _ in timed]

    def steps() -> None:
        for tick, (_, _, lineage) in zip(decoded, timed, strict=True):
            step(symbols[tick["symbol"]], tick, "ticks", lineage.partition, lineage.offset, lineage.produced_at_ms)

    return {
        "decode": _cpu_ns_per_tick(lambda: [decode(value) for _, value, _ in timed], n),
        "step": _cpu_ns_per_tick(steps, n),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument("--symbols", type=int, default=50)
    args = parser.parse_args()
    _, records = _records(args.warmup + args.ticks, args.symbols)
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        handler, predictions = handler_round(records, args.warmup)
        parts = parts_round(records, args.warmup, predictions)
        minimal = minimal_round(records, args.warmup)
        row = {
            "decode": handler["decode"],
            "validate": handler["read_tick"] - handler["decode"],
            "forecaster: features": parts["features"],
            "forecaster: model": parts["model"],
            "forecaster: prediction record": parts["record"],
            "forecaster: rest": handler["process"] - parts["features"] - parts["model"] - parts["record"],
            "encode": handler["encode"],
            "handler counters, outcome, interleaving": handler["handle"]
            - handler["read_tick"]
            - handler["process"]
            - handler["encode"],
            "batch loop bookkeeping": handler["loop"],
            "publish (produce call)": handler["publish"],
            "handler total (handle)": handler["handle"],
            "minimal loop: decode": minimal["decode"],
            "minimal loop: step (features, model, record, encode)": minimal["step"],
        }
        for name, value in row.items():
            best[name] = min(best.get(name, value), value)
        print(", ".join(f"{name} {value / 1000:.2f}" for name, value in row.items()), flush=True)
    print(f"\nbest of {args.rounds} rounds, µs of CPU per tick:")
    for name, value in best.items():
        print(f"  {name:55s} {value / 1000:7.2f}")


if __name__ == "__main__":
    main()
