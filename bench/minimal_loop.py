"""The floor: the same job as a worker in the fewest lines, written without tickcast's handler.

``python -m bench.minimal_loop --status-file PATH``: confluent-kafka consume → fastavro decode →
``river.stats`` features → the default model recipe → fastavro encode → produce, one record at a time.
It keeps what a prediction must carry (every field of the contract, lineage included) and the
prequential order (learn the previous features against this return, then predict), but none of the
worker's guarantees: no validation, no outlier guard, no dead letters, no checkpoints, no metrics.
So ``plain loop / minimal loop`` is the price of the handler's own work and guarantees, and
``worker / minimal loop`` that of everything tickcast adds.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Message
from river import stats

from bench.plain_loop import PlainLoop, main
from tickcast.common.contracts import load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE, TICK_SCHEMA_FILE
from tickcast.common.contracts.codec import HEADER, HEADER_SIZE, MAGIC_BYTE, without_logical_types
from tickcast.predictor.models import OnlineRegressor, model_spec
from tickcast.predictor.settings import PredictorSettings

WARMUP_TICKS = 20


@dataclass(slots=True)
class Symbol:
    model: OnlineRegressor
    last_log_price: float | None = None
    lag1: float = 0.0
    last_nonzero: float = 0.0
    fast: stats.EWMean = field(default_factory=lambda: stats.EWMean(fading_factor=0.3))
    slow: stats.EWMean = field(default_factory=lambda: stats.EWMean(fading_factor=0.05))
    pending: dict[str, float] | None = None
    learned: int = 0


class MinimalLoop(PlainLoop):
    """:class:`~bench.plain_loop.PlainLoop`'s consumer, producer and status file around a hand-written step."""

    def __init__(self, settings: PredictorSettings, status_file: Path, batch: int = 500) -> None:
        super().__init__(settings, status_file, batch)
        store = open_schema_store(settings.schema_registry_url)
        tick_schema, prediction_schema = load_schema(TICK_SCHEMA_FILE), load_schema(PREDICTION_SCHEMA_FILE)
        self.tick_schema = fastavro.parse_schema(without_logical_types(tick_schema))
        self.prediction_schema = fastavro.parse_schema(without_logical_types(prediction_schema))
        self.header = HEADER.pack(MAGIC_BYTE, store.register(f"{settings.predictions_topic}-value", prediction_schema))
        self.spec = model_spec(settings.model)
        self.symbols: dict[str, Symbol] = {}
        self.ticks_in = 0

    def counts(self) -> dict[str, int]:
        return {"ticks_in": self.ticks_in, "predictions_out": self.ticks_in, "dead_letters": 0}

    def predict(self, message: Message) -> bytes:
        tick: Any = fastavro.schemaless_reader(io.BytesIO(message.value()[HEADER_SIZE:]), self.tick_schema, None)
        state = self.symbols.get(tick["symbol"])
        if state is None:
            state = self.symbols[tick["symbol"]] = Symbol(self.spec.build())
        log_price = math.log(tick["price"])
        forecast, status = 0.0, "WARMING_UP"
        if state.last_log_price is not None:
            move = 1e4 * (log_price - state.last_log_price)
            if state.pending is not None:
                state.model.learn_one(state.pending, move)
                state.learned += 1
            state.lag1 = move
            if move:
                state.last_nonzero = move
            state.fast.update(move)
            state.slow.update(move)
            features = {
                "r1_bps": state.lag1,
                "last_nonzero_bps": state.last_nonzero,
                "ewm_fast_bps": state.fast.get(),
                "ewm_slow_bps": state.slow.get(),
            }
            if state.learned >= WARMUP_TICKS:
                forecast, status = state.model.predict_one(features), "READY"
            state.pending = features
        state.last_log_price = log_price
        out = io.BytesIO()
        out.write(self.header)
        record = {
            "symbol": tick["symbol"],
            "event_time": tick["event_time"],
            "last_price": tick["price"],
            "predicted_return_bps": forecast,
            "predicted_price": tick["price"] * math.exp(forecast / 1e4),
            "horizon_ticks": 1,
            "status": status,
            "flags": [],
            "model_name": self.spec.name,
            "model_version": self.spec.full_version,
            "ticks_learned": state.learned,
            "abs_error_ewm_bps": None,
            "source_topic": message.topic(),
            "source_partition": message.partition(),
            "source_offset": message.offset(),
            "tick_produced_at": message.timestamp()[1],
            "predicted_at": time.time_ns() // 1000,
            "worker": self.settings.worker_id,
        }
        fastavro.schemaless_writer(out, self.prediction_schema, record)
        return out.getvalue()

    def handle(self, messages: list[Message]) -> None:
        produce, topic = self.producer.produce, self.settings.predictions_topic
        for message in messages:
            if message.error() is not None:
                continue
            self.ticks_in += 1
            value = self.predict(message)
            while True:
                try:
                    produce(topic, value, message.key())
                    break
                except BufferError:
                    self.producer.poll(0.05)
        self.producer.poll(0)


if __name__ == "__main__":
    raise SystemExit(main(loop_class=MinimalLoop, name="minimal_loop"))
