"""The job written the way a user of any framework would write it, without tickcast's handler.

Update ``river.stats`` features, learn and predict with the default model recipe (prequential: learn the
previous features against this return, then predict), and fill every field of the prediction contract
(:meth:`Recipe.predict`). No validation, outlier guard, dead letters, checkpoints or metrics. The minimal loop
(``bench/minimal_loop.py``) and the naive Faust agent wrap it in fastavro calls on the sliced 5-byte header
(:meth:`Recipe.decode`, :meth:`Recipe.encode`); the other peers' view 2 reads and writes with their framework's
own Schema Registry serde instead. Each keeps :class:`Symbol` in its own kind of state.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from typing import Any, cast

import fastavro
from river import stats

from tickcast.common.contracts import load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE, TICK_SCHEMA_FILE
from tickcast.common.contracts.codec import HEADER, HEADER_SIZE, MAGIC_BYTE, without_logical_types
from tickcast.predictor.models import OnlineRegressor, model_spec
from tickcast.predictor.settings import PredictorSettings

WARMUP_TICKS = 20


@dataclass(slots=True)
class Symbol:
    """One symbol's features and model."""

    model: OnlineRegressor
    last_log_price: float | None = None
    lag1: float = 0.0
    last_nonzero: float = 0.0
    fast: stats.EWMean = field(default_factory=lambda: stats.EWMean(fading_factor=0.3))
    slow: stats.EWMean = field(default_factory=lambda: stats.EWMean(fading_factor=0.05))
    pending: dict[str, float] | None = None
    learned: int = 0


class Recipe:
    """Decode, step and encode, configured from the worker's settings."""

    def __init__(self, settings: PredictorSettings) -> None:
        store = open_schema_store(settings.schema_registry_url)
        tick_schema, prediction_schema = load_schema(TICK_SCHEMA_FILE), load_schema(PREDICTION_SCHEMA_FILE)
        #: The prediction contract as its .avsc file has it: what a user hands a Schema Registry serializer.
        self.prediction_contract = prediction_schema
        self.tick_schema = fastavro.parse_schema(without_logical_types(tick_schema))
        self.prediction_schema = fastavro.parse_schema(without_logical_types(prediction_schema))
        self.header = HEADER.pack(MAGIC_BYTE, store.register(f"{settings.predictions_topic}-value", prediction_schema))
        self.spec = model_spec(settings.model)
        self.worker = settings.worker_id

    def decode(self, value: bytes) -> dict[str, Any]:
        # The tick schema is a record, so fastavro reads a dict.
        return cast(dict[str, Any], fastavro.schemaless_reader(io.BytesIO(value[HEADER_SIZE:]), self.tick_schema, None))

    def new_symbol(self) -> Symbol:
        return Symbol(self.spec.build())

    def step(self, state: Symbol, tick: dict[str, Any], topic: str, partition: int, offset: int, ts: int) -> bytes:
        """Fold one tick into ``state`` and return its encoded prediction."""
        return self.encode(self.predict(state, tick, topic, partition, offset, ts))

    def predict(
        self, state: Symbol, tick: dict[str, Any], topic: str, partition: int, offset: int, ts: int
    ) -> dict[str, Any]:
        """Fold one tick (``event_time`` as its deserializer gives it) into ``state``; return the prediction record."""
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
        return {
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
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "tick_produced_at": ts,
            "predicted_at": time.time_ns() // 1000,
            "worker": self.worker,
        }

    def encode(self, record: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        out.write(self.header)
        fastavro.schemaless_writer(out, self.prediction_schema, record)
        return out.getvalue()
