"""Read predictions and dead letters from Kafka with confluent-kafka and decode them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE
from tickcast.common.errors import Rejected
from tickcast.common.kafka import new_consumer
from tickcast.common.records import Prediction
from tickcast.subscriber.settings import SubscriberSettings


@dataclass(frozen=True, slots=True)
class Received:
    """One record read: a decoded prediction, or a dead letter with its headers."""

    topic: str
    partition: int
    offset: int
    prediction: Prediction | None = None
    dead_letter: dict[str, str] | None = None
    error: str | None = None
    key: str | None = None
    """A dead letter's key as text: the symbol it was sent under (its headers do not name it); None if it had none."""


class PredictionReader:
    """Consumes the predictions topic (and optionally the dead-letter topic).

    Without a group id it uses a private group and does not commit, so any number
    of readers see everything from the chosen start.
    """

    def __init__(self, settings: SubscriberSettings, from_beginning: bool = True, dead_letters: bool = False) -> None:
        self.settings = settings
        store = open_schema_store(settings.schema_registry_url, settings)
        self.codec = AvroCodec(store, f"{settings.predictions_topic}-value", load_schema(PREDICTION_SCHEMA_FILE))
        group = settings.subscriber_group_id or f"tickcast-subscriber-{uuid.uuid4().hex[:12]}"
        self._consumer = new_consumer(
            settings,
            group,
            **{
                "auto.offset.reset": "earliest" if from_beginning else "latest",
                "enable.auto.commit": settings.subscriber_group_id is not None,
                # A group commits only what the caller says it handled (:meth:`done`): librdkafka's default
                # stores every record a poll returns, so a subscriber stopping after --count committed the
                # rest of its batch, never printed, and the group's next run skipped it.
                "enable.auto.offset.store": False,
                "session.timeout.ms": int(settings.session_timeout_s * 1000),
                "fetch.wait.max.ms": settings.fetch_max_wait_ms,
            },
        )
        topics = [settings.predictions_topic] + ([settings.dlq_topic] if dead_letters else [])
        self._consumer.subscribe(topics)

    def poll(self, timeout_s: float = 0.2, max_records: int = 1000) -> list[Received]:
        """What has arrived (at most ``max_records``), decoded, as soon as anything has: waits up to ``timeout_s``.

        librdkafka's batch ``consume`` returns only once it has ``max_records`` or its timeout has passed,
        which would hold every record read at a low rate until the timeout ended (the demo's view measured
        +50 ms at 100 ms reads). So the first record is waited for alone, and the rest taken without waiting.
        """
        first = self._consumer.poll(timeout_s)
        if first is None:
            return []
        messages = (
            [first, *self._consumer.consume(num_messages=max_records - 1, timeout=0)] if max_records > 1 else [first]
        )
        return [received for message in messages if (received := self._decode(message)) is not None]

    def done(self, received: Received) -> None:
        """``received`` was handled: the group's next commit may include it (no effect without a group)."""
        if received.partition < 0:
            return  # a consumer error, not a record
        # KafkaException: the partition was revoked meanwhile; its new owner reads the record again.
        with contextlib.suppress(KafkaException):
            self._consumer.store_offsets(
                offsets=[TopicPartition(received.topic, received.partition, received.offset + 1)]
            )

    def is_assigned(self) -> bool:
        """True once the group has given this reader partitions (a new group's join takes seconds).

        The join only progresses while :meth:`poll` is called, so a caller waiting on this keeps polling.
        """
        return bool(self._consumer.assignment())

    def __iter__(self) -> Iterator[Received]:
        while True:
            yield from self.poll()

    def _decode(self, message: Message) -> Received | None:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return None
            return Received(message.topic() or "", -1, -1, error=str(error))
        topic, partition, offset = message.topic() or "", message.partition() or 0, message.offset() or 0
        if topic == self.settings.dlq_topic:
            headers = {
                name: raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
                for name, raw in _header_pairs(message)
            }
            raw_key = message.key()
            key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else raw_key
            return Received(topic, partition, offset, dead_letter=headers, key=key)
        try:
            record = self.codec.decode(message.value() or b"")
        except Rejected as rejected:
            return Received(topic, partition, offset, error=str(rejected))
        return Received(topic, partition, offset, prediction=Prediction.from_avro(record))

    def close(self) -> None:
        self._consumer.close()


def _header_pairs(message: Message) -> list[tuple[str, str | bytes | None]]:
    headers = message.headers() or []
    # confluent-kafka returns a list of (name, value) pairs; the stubs also allow a dict.
    return list(headers.items()) if isinstance(headers, dict) else list(headers)
