"""Where one prediction came from: its tick, its model recipe, and the origin of its model's state.

``tickcast explain --topic T --partition P --offset O`` reads the prediction at that position, then the
tick its lineage names (``source_topic``/``source_partition``/``source_offset``), and, for a state restored
from a snapshot, the snapshot record of that symbol with the applied offset and generation the prediction
names. The snapshot is shown by its metadata only; its payload is not unpickled and its signature not checked.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE, TICK_SCHEMA_FILE
from tickcast.common.errors import Rejected
from tickcast.common.kafka import new_consumer
from tickcast.common.security import KafkaClientSettings

SNAPSHOT_SCHEMA_FILE = "snapshot.avsc"
#: Snapshot fields not worth printing: the pickled state and its HMAC.
HIDDEN_SNAPSHOT_FIELDS = ("payload", "signature")


class NotFound(LookupError):
    """No record at the position asked for (never written, or deleted by retention or compaction)."""


@dataclass
class Explanation:
    """The prediction, its tick and its state's origin, each as decoded records (or why they are missing)."""

    prediction: dict[str, Any]
    tick: dict[str, Any] | None = None
    tick_problem: str | None = None
    snapshot: dict[str, Any] | None = None
    snapshot_problem: str | None = None
    notes: list[str] = field(default_factory=list)


def _consumer(kafka: KafkaClientSettings) -> Consumer:
    return new_consumer(
        kafka,
        f"tickcast-explain-{uuid.uuid4().hex[:12]}",
        **{
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            # An offset past the end (or deleted) is an answer, not a reason to jump elsewhere and wait.
            "auto.offset.reset": "error",
        },
    )


def scan(
    kafka: KafkaClientSettings,
    topic: str,
    partition: int,
    start: int,
    stop: Callable[[Message], bool],
    timeout_s: float,
) -> Message | None:
    """The first record of ``topic``/``partition`` from ``start`` on for which ``stop`` is true; None at the end."""
    consumer = _consumer(kafka)
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=0.2):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return None
                    raise NotFound(f"reading {topic!r} partition {partition} failed: {error}")
                if stop(message):
                    return message
        raise TimeoutError(f"{topic!r} partition {partition} was not read to its end within {timeout_s}s")
    finally:
        consumer.close()


def read_at(kafka: KafkaClientSettings, topic: str, partition: int, offset: int, timeout_s: float = 15.0) -> Message:
    """The record at ``offset``; :class:`NotFound` if there is none."""
    missing = f"no record at {topic}:{partition}:{offset} (not written yet, or deleted by retention)"
    try:
        found = scan(kafka, topic, partition, offset, lambda m: (m.offset() or 0) >= offset, timeout_s)
    except NotFound as exc:
        raise NotFound(f"{missing}: {exc}") from exc
    except TimeoutError as exc:
        # Apache Kafka answers an offset past the end at once (auto.offset.reset=error); a broker that
        # just returns nothing (the embedded one) is waited for until the deadline.
        raise NotFound(f"{missing}: nothing arrived within {timeout_s}s") from exc
    if found is None or found.offset() != offset:
        raise NotFound(missing)
    return found


def explain(
    kafka: KafkaClientSettings,
    registry_url: str | None,
    where: tuple[str, int, int],
    snapshots_topic: str | None,
    timeout_s: float = 15.0,
) -> Explanation:
    """Read the prediction at ``where`` (topic, partition, offset) and what its lineage names."""
    store = open_schema_store(registry_url, kafka)
    topic, partition, offset = where
    predictions = AvroCodec(store, f"{topic}-value", load_schema(PREDICTION_SCHEMA_FILE))
    raw = read_at(kafka, topic, partition, offset, timeout_s)
    try:
        prediction = predictions.decode(raw.value() or b"")
    except Rejected as exc:
        raise NotFound(f"{topic}:{partition}:{offset} is not a prediction: {exc}") from exc
    found = Explanation(prediction)
    tick_topic, tick_partition = prediction["source_topic"], prediction["source_partition"]
    try:
        tick_record = read_at(kafka, tick_topic, tick_partition, prediction["source_offset"], timeout_s)
        ticks = AvroCodec(store, f"{tick_topic}-value", load_schema(TICK_SCHEMA_FILE))
        found.tick = ticks.decode(tick_record.value() or b"")
    except (NotFound, Rejected) as exc:
        found.tick_problem = str(exc)
    if prediction["state_origin"] == "SNAPSHOT":
        if snapshots_topic is None:
            found.snapshot_problem = "no snapshots topic given (--snapshots-topic, or TICKCAST_GROUP_ID)"
        else:
            find_snapshot(kafka, snapshots_topic, prediction, found, timeout_s)
    elif prediction["state_origin"] == "UNKNOWN":
        found.notes.append("written with a schema before state lineage (id 2): the state's origin is unknown")
    return found


def find_snapshot(
    kafka: KafkaClientSettings, topic: str, prediction: dict[str, Any], found: Explanation, timeout_s: float
) -> None:
    """Fill ``found.snapshot`` with the snapshot record the prediction's state was restored from."""
    codec = AvroCodec(open_schema_store(None), "snapshots-value", load_schema(SNAPSHOT_SCHEMA_FILE))
    symbol = prediction["symbol"].encode()
    wanted = (prediction["state_since_offset"], prediction["state_snapshot_generation"])

    def is_it(message: Message) -> bool:
        if message.key() != symbol or not message.value():
            return False
        try:
            record = codec.decode(message.value() or b"")
        except Rejected:
            return False
        return (record["applied_offset"], record["generation"]) == wanted

    try:
        message = scan(kafka, topic, prediction["source_partition"], OFFSET_BEGINNING, is_it, timeout_s)
    except (NotFound, TimeoutError) as exc:
        found.snapshot_problem = str(exc)
        return
    if message is None:
        found.snapshot_problem = (
            f"no snapshot of {prediction['symbol']} with applied_offset {wanted[0]} and generation {wanted[1]} "
            f"in {topic} partition {prediction['source_partition']} (compacted away by a newer one?)"
        )
        return
    record = codec.decode(message.value() or b"")
    # The record's own "topic" is the ticks topic its applied_offset counts, not where the record lives.
    fields = {("ticks_topic" if k == "topic" else k): v for k, v in record.items() if k not in HIDDEN_SNAPSHOT_FIELDS}
    found.snapshot = {"topic": topic, "partition": message.partition(), "offset": message.offset(), **fields}
