"""Putting one record's outcome on the wire, whatever the record: no record can stop a worker.

A prediction goes to the predictions topic, a refused record to the dead-letter topic with
its original bytes. When librdkafka refuses a message at ``produce()`` (too large, invalid),
the record falls back one step at a time, each step smaller than the last:

1. a prediction that cannot be produced becomes a dead letter (``output_refused``);
2. a dead letter keeps at most what fits in the producer's ``message.max.bytes`` (see
   :func:`fit_dead_letter`), and says so in its headers;
3. a dead letter that still cannot be produced is sent without key or value: its reason,
   message and lineage headers only;
4. if even that is refused, :class:`PartitionHalted` is raised: the caller stops the partition
   before that record, so nothing past it is ever committed.

The model events a tick decided (promotions, demotions, drifts) go to the model-events topic first, under the
record's key (its symbol), whether the tick became a prediction or a dead letter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from tickcast.common.errors import Reason
from tickcast.common.records import Lineage
from tickcast.predictor.metrics import TickCounters
from tickcast.predictor.output import OutputProducer, ProduceRefused
from tickcast.predictor.runtime import DLQ_HEADER_PREFIX, DeadLettered, Outcome, Predicted, dead_letter_headers

log = structlog.get_logger("tickcast.predictor")

#: Room kept free below ``message.max.bytes`` for what librdkafka adds to key, value and headers
#: (record batch and record framing: ~100 bytes per message in librdkafka's own size check).
FRAMING_BYTES = 1024

#: A dead letter's key is cut to this many bytes (symbols are a few characters; longer keys are bad input).
MAX_DEAD_LETTER_KEY_BYTES = 1024


class PartitionHalted(Exception):
    """Not even a minimal dead letter of a record could be produced: its partition must stop before it."""


def headers_size(headers: list[tuple[str, bytes]]) -> int:
    """Bytes of header names and values.

    >>> headers_size([("a", b"xy"), ("bc", b"")])
    5
    """
    return sum(len(name) + len(value) for name, value in headers)


def fit_dead_letter(letter: DeadLettered, max_message_bytes: int) -> DeadLettered:
    """``letter`` itself if it fits in ``max_message_bytes``, else its key and value cut to what fits.

    Cut means a prefix of the original bytes is kept, and ``tickcast.original.key_bytes`` /
    ``tickcast.original.value_bytes`` headers give the original sizes. The bound is
    ``max_message_bytes`` minus :data:`FRAMING_BYTES`, headers and key.

    >>> letter = DeadLettered(b"SPY", b"x" * 5000, [("tickcast.reason", b"oversized")])
    >>> fitted = fit_dead_letter(letter, 4096)
    >>> len(fitted.value), dict(fitted.headers)["tickcast.original.value_bytes"]
    (3012, b'5000')
    >>> fit_dead_letter(letter, 10_000) is letter
    True
    """
    key, value, headers = letter.key, letter.value, list(letter.headers)
    key_bytes, value_bytes = len(key or b""), len(value or b"")
    if key_bytes + value_bytes + headers_size(headers) + FRAMING_BYTES <= max_message_bytes:
        return letter
    if key is not None and key_bytes > MAX_DEAD_LETTER_KEY_BYTES:
        key = key[:MAX_DEAD_LETTER_KEY_BYTES]
        headers.append((DLQ_HEADER_PREFIX + "original.key_bytes", str(key_bytes).encode()))
    if value is not None:
        headers.append((DLQ_HEADER_PREFIX + "original.value_bytes", str(value_bytes).encode()))
        room = max_message_bytes - FRAMING_BYTES - headers_size(headers) - len(key or b"")
        value = value[: max(0, room)]
    return DeadLettered(key, value, headers)


@dataclass
class OutcomePublisher:
    """Sends each :data:`Outcome` where it belongs, falling back as the module says; never raises for a record."""

    output: OutputProducer
    predictions_topic: str
    dlq_topic: str
    worker: str
    counters: TickCounters
    model_events_topic: str = "model-events"

    def publish(self, outcome: Outcome, key: bytes | None, value: bytes | None, lineage: Lineage) -> bool:
        """Queue ``outcome`` of the record (``key``, ``value``) at ``lineage``; False if the queue is full.

        On False nothing of it was queued: await ``output.wait_for_room()`` and publish it again.
        Raises :class:`PartitionHalted` if not even a minimal dead letter could be produced.
        """
        if outcome.model_events and not self._send_model_events(outcome, lineage):
            return False
        if not isinstance(outcome, Predicted):
            return self._send_letter(outcome, lineage)
        try:
            return self.output.send(self.predictions_topic, outcome.key, outcome.value, source=lineage.partition)
        except ProduceRefused as refused:
            letter = self._refused_letter(key, value, lineage, Reason.OUTPUT_REFUSED, str(refused))
        sent = self._send_letter(letter, lineage)
        if sent:  # counted once it is queued: a full queue makes the caller publish the prediction again
            self.counters.predictions_out -= 1
            self.counters.dead_letters[Reason.OUTPUT_REFUSED.value] += 1
        return sent

    def _send_model_events(self, outcome: Outcome, lineage: Lineage) -> bool:
        """Queue the outcome's model events, dropping each once queued (a retry after a full queue sends the rest)."""
        while outcome.model_events:
            event = outcome.model_events[0]
            try:
                if not self.output.send(self.model_events_topic, outcome.key, event, source=lineage.partition):
                    return False
            except ProduceRefused as refused:  # an audit record never stops predictions: say so loudly
                log.error("model_event_refused", partition=lineage.partition, offset=lineage.offset, error=str(refused))
            outcome.model_events = outcome.model_events[1:]
        return True

    def _send_letter(self, letter: DeadLettered, lineage: Lineage) -> bool:
        fitted = fit_dead_letter(letter, self.output.max_message_bytes)
        try:
            return self.output.send(self.dlq_topic, fitted.key, fitted.value, fitted.headers, source=lineage.partition)
        except ProduceRefused as refused:
            # No key, no value: only what says why and where it came from.
            minimal = [*fitted.headers, (DLQ_HEADER_PREFIX + "payload_dropped", str(refused).encode())]
            log.error("dead_letter_refused", partition=lineage.partition, offset=lineage.offset, error=str(refused))
        try:
            return self.output.send(self.dlq_topic, None, None, minimal, source=lineage.partition)
        except ProduceRefused as refused:
            raise PartitionHalted(
                f"partition {lineage.partition} stopped at offset {lineage.offset}: not even a dead letter "
                f"without payload could be produced ({refused}); nothing from this offset on is committed"
            ) from refused

    def _refused_letter(
        self, key: bytes | None, value: bytes | None, lineage: Lineage, reason: Reason, message: str
    ) -> DeadLettered:
        log.error("prediction_refused", partition=lineage.partition, offset=lineage.offset, error=message)
        now_ms = time.time_ns() // 1_000_000
        return DeadLettered(key, value, dead_letter_headers(reason, message, lineage, self.worker, now_ms))
