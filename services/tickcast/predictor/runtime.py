"""What a worker does with one record, minus Faust: decode, forecast, encode, or dead-letter.

:class:`TickHandler` is synchronous and pure apart from its per-symbol state and
counters, so the worker's batch loop stays a thin ``for`` and this is testable without Kafka.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TypeAlias

import structlog

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE, TICK_SCHEMA_FILE
from tickcast.common.errors import Reason, Rejected
from tickcast.common.model_events import MODEL_EVENT_SCHEMA_FILE
from tickcast.common.records import Lineage
from tickcast.common.redaction import redact_text
from tickcast.common.validation import TickLimits
from tickcast.predictor.forecaster import FLAG_OUTLIER, Forecaster
from tickcast.predictor.intake import read_tick
from tickcast.predictor.metrics import TickCounters, WorkerMetrics
from tickcast.predictor.models import model_spec
from tickcast.predictor.selection.champion import SelectionConfig
from tickcast.predictor.selection.drift import DriftPolicy
from tickcast.predictor.selection.rule import PromotionPolicy
from tickcast.predictor.settings import PredictorSettings

log = structlog.get_logger("tickcast.predictor")

DLQ_HEADER_PREFIX = "tickcast."


@dataclass(slots=True)  # not frozen: built for every tick (see tickcast.common.records)
class Predicted:
    """A tick that became a prediction: the encoded record to publish, and the symbol whose state it changed."""

    symbol: str
    key: bytes | None
    value: bytes
    model_events: tuple[bytes, ...] = ()
    """Encoded model events (key: the symbol) the tick's label decided; sent before the prediction.

    A tuple: the default is shared, where a list would be a new one every tick (almost always empty)."""


@dataclass(slots=True)  # not frozen: the publisher drops each model event once it is queued, as for Predicted
class DeadLettered:
    """A record refused as it came (original key and value bytes), with headers that say why."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    model_events: tuple[bytes, ...] = ()
    """Encoded model events (key: the symbol) its tick decided before it failed; sent before the dead letter.

    A state adopted on a tick (:meth:`Forecaster.adopt`) stays adopted when learning then raises, so its demotion
    happened, and is this tick's: held back, it would go out with the next prediction, under that one's key."""


def new_forecaster(settings: PredictorSettings) -> Forecaster:
    """The forecaster a worker with ``settings`` runs: model, horizons, intervals, gaps and selection.

    Tests and replays that must say what a worker did build theirs here too.

    >>> f = new_forecaster(PredictorSettings(bootstrap_servers="k:1", horizons="1t,10s", worker_id="w"))
    >>> [h.label for h in f.horizons], f.worker
    (['1t', '10s'], 'w')
    """
    return Forecaster(
        model_spec(settings.model),
        worker=settings.worker_id,
        horizons=settings.horizon_list,
        coverage=settings.interval_coverage or None,
        gap_ms=round(settings.gap_s * 1000),
        capacity=settings.label_capacity,
        selection=selection_config(settings),
    )


def selection_config(settings: PredictorSettings) -> SelectionConfig | None:
    """What every symbol's champion/challenger selection runs with; None when there is nothing to select or watch.

    >>> selection_config(PredictorSettings(bootstrap_servers="k:1", drift_detector="off")) is None
    True
    >>> selection_config(PredictorSettings(bootstrap_servers="k:1", challengers="pa")).challengers
    ('pa',)
    """
    if not settings.challenger_names and settings.drift_detector == "off":
        return None
    return SelectionConfig(
        settings.model,
        settings.challenger_names,
        settings.challenger_score_fraction,
        PromotionPolicy(
            settings.promotion_min_samples,
            settings.promotion_level,
            settings.promotion_min_skill_margin,
            settings.promotion_cooldown,
            warm_up_first_look=settings.promotion_warm_up_first_look,
            warm_up_labels=settings.promotion_warm_up_labels,
        ),
        DriftPolicy(
            settings.drift_detector, settings.drift_adwin_delta, settings.drift_ph_threshold,
            settings.drift_fresh_challenger,
        ),
    )  # fmt: skip


Outcome: TypeAlias = Predicted | DeadLettered
"""What :meth:`TickHandler.handle` makes of one record: exactly one of the two."""


def dead_letter_headers(
    reason: Reason, message: str, lineage: Lineage, worker: str, now_ms: int
) -> list[tuple[str, bytes]]:
    """Headers that make a dead letter self-explaining and replayable.

    >>> dict(dead_letter_headers(Reason.BAD_PRICE, "x", Lineage("ticks", 1, 2, 3), "w", 4))["tickcast.reason"]
    b'bad_price'
    """
    fields = {
        "reason": reason.value,
        "message": redact_text(message),  # a message may quote a URL with credentials (the schema registry's)
        "source.topic": lineage.topic,
        "source.partition": str(lineage.partition),
        "source.offset": str(lineage.offset),
        "source.timestamp": str(lineage.produced_at_ms),
        "rejected_at": str(now_ms),
        "worker": worker,
    }
    return [(DLQ_HEADER_PREFIX + name, text.encode("utf-8")) for name, text in fields.items()]


class TickHandler:
    """Turns one raw tick record into one :data:`Outcome`; never raises for bad input."""

    def __init__(self, settings: PredictorSettings) -> None:
        store = open_schema_store(settings.schema_registry_url, settings)
        self.tick_codec = AvroCodec(store, f"{settings.ticks_topic}-value", load_schema(TICK_SCHEMA_FILE))
        self.prediction_codec = AvroCodec(
            store, f"{settings.predictions_topic}-value", load_schema(PREDICTION_SCHEMA_FILE)
        )
        self.model_event_codec = AvroCodec(
            store, f"{settings.model_events_topic}-value", load_schema(MODEL_EVENT_SCHEMA_FILE)
        )
        self.forecaster = new_forecaster(settings)
        self.limits = TickLimits(max_future_ms=settings.max_future_ms)
        self.max_bytes = settings.max_record_bytes
        self.worker = settings.worker_id
        self.counters = TickCounters()
        self.metrics = WorkerMetrics(
            settings.worker_id,
            settings.model,
            self.forecaster.model_version,
            self.counters,
            states=lambda: self.forecaster.states,
        )

    def handle(self, key: bytes | None, value: bytes | None, lineage: Lineage) -> Outcome:
        started = time.perf_counter()
        counters = self.counters
        counters.ticks_in += 1
        counters.last_offsets[lineage.partition] = lineage.offset
        now_us = time.time_ns() // 1000
        try:
            tick = read_tick(key, value, self.tick_codec, now_us // 1000, self.limits, self.max_bytes)
            prediction = self.forecaster.process(tick, lineage, now_us)
            encoded = self.prediction_codec.encode_object(prediction)
        except Rejected as rejected:
            outcome = self._dead_letter(key, value, lineage, rejected.reason, rejected.message, now_us)
            counters.processing_seconds.observe(time.perf_counter() - started)
            return outcome
        except Exception as exc:  # a model or codec bug must not stop the stream; keep the tick
            log.exception("tick_processing_failed", partition=lineage.partition, offset=lineage.offset)
            outcome = self._dead_letter(
                key, value, lineage, Reason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}", now_us
            )
            counters.processing_seconds.observe(time.perf_counter() - started)
            return outcome
        counters.predictions_out += 1
        counters.statuses[prediction.status] += 1
        if prediction.flags and FLAG_OUTLIER in prediction.flags:
            counters.outliers += 1
        elapsed = time.perf_counter() - started
        counters.processing_seconds.observe(elapsed)
        # Emitted = stamped (predicted_at) + handler time. Producer clock skew can make it
        # negative, which would only corrupt the histogram's sum.
        latency = now_us / 1e6 + elapsed - lineage.produced_at_ms / 1e3
        counters.end_to_end_seconds.observe(latency if latency > 0.0 else 0.0)
        predicted = Predicted(prediction.symbol, key, encoded)
        if self.forecaster.model_events:  # rare: a promotion, demotion or drift on this tick's label
            predicted.model_events = self._take_model_events()
        return predicted

    def _take_model_events(self) -> tuple[bytes, ...]:
        """The model events the forecaster recorded on this tick, encoded; it forgets them (they go with this tick)."""
        events = self.forecaster.model_events
        encoded = tuple(self.model_event_codec.encode(e.to_avro()) for e in events)
        self.counters.model_events.update(e.kind for e in events)
        events.clear()
        return encoded

    def _dead_letter(
        self,
        key: bytes | None,
        value: bytes | None,
        lineage: Lineage,
        reason: Reason,
        message: str,
        now_us: int,
    ) -> DeadLettered:
        self.counters.dead_letters[reason.value] += 1
        log.warning(
            "tick_rejected",
            reason=reason.value,
            detail=message,
            partition=lineage.partition,
            offset=lineage.offset,
        )
        letter = DeadLettered(key, value, dead_letter_headers(reason, message, lineage, self.worker, now_us // 1000))
        if self.forecaster.model_events:  # decided on this tick before it failed (see DeadLettered.model_events)
            letter.model_events = self._take_model_events()
        return letter
