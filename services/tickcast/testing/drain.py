"""Read a topic to its end, and account for every tick: answered once, more than once, or never.

"The end" is where the broker says a partition ends *now*. Read it after the writers stopped
(stop the workers gracefully first) and every record they will ever write is seen, late duplicates
included; a reader that stops after N records cannot see the N+1st.

How the end is found: each partition is read from its first offset until librdkafka reports
``_PARTITION_EOF``, which it does when a fetch response's high watermark equals the read position,
and at or past the end the broker lists for it (ListOffsets "latest"). On Apache Kafka both agree.
Tansu workaround: Tansu 0.6 answers ListOffsets "latest" with the last *batch's* base offset + 1
(measured: 1 for 500 records produced in one batch, while its fetch responses said 500), so there the
listed end is only a lower bound and the fetch-response high watermark is the one that is exact.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE
from tickcast.common.errors import Rejected
from tickcast.common.kafka import new_consumer
from tickcast.common.records import Prediction
from tickcast.common.security import KafkaClientSettings

TickId = tuple[str, int, int]
"""A tick's lineage, unique per tick: (topic, partition, offset)."""


@dataclass(frozen=True, slots=True)
class TopicRecord:
    """One record as stored: where it is, and its raw key and value."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def at_end(eof_at: Mapping[int, int], listed_ends: Mapping[int, int]) -> bool:
    """Every partition reported its end (``eof_at``) at or past the end the broker listed for it.

    >>> at_end({0: 500, 1: 0}, {0: 1, 1: 0})  # Tansu lists 1 for 500 records in one batch; the fetch said 500
    True
    >>> at_end({0: 500}, {0: 1, 1: 0})  # partition 1 has not reported its end yet
    False
    """
    return all(eof_at.get(partition, -1) >= end for partition, end in listed_ends.items())


def read_to_end(kafka: KafkaClientSettings, topic: str, timeout_s: float = 60.0) -> list[TopicRecord]:
    """Every record of ``topic``, partition by partition in offset order, read to the topic's end.

    Uses a private consumer that assigns partitions itself (no group join, nothing committed).
    Raises :class:`TimeoutError` naming the partitions that did not reach their end in ``timeout_s``.
    """
    consumer = new_consumer(
        kafka,
        f"tickcast-drain-{uuid.uuid4().hex[:12]}",
        **{"enable.auto.commit": False, "enable.partition.eof": True, "fetch.wait.max.ms": 50},
    )
    deadline = time.monotonic() + timeout_s
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise LookupError(f"topic {topic!r} does not exist")
        listed_ends: dict[int, int] = {}
        for partition in sorted(metadata.partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s, cached=False)
            listed_ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in listed_ends])
        records: dict[int, list[TopicRecord]] = {p: [] for p in listed_ends}
        eof_at: dict[int, int] = {}
        while not at_end(eof_at, listed_ends):
            if time.monotonic() > deadline:
                behind = {p: len(records[p]) for p in listed_ends if eof_at.get(p, -1) < listed_ends[p]}
                raise TimeoutError(
                    f"{topic}: partitions {sorted(behind)} did not reach their end within {timeout_s}s "
                    f"(records read there: {behind}; listed ends {listed_ends}; ends seen {eof_at})"
                )
            for message in consumer.consume(num_messages=1000, timeout=0.2):
                partition, offset = message.partition() or 0, message.offset() or 0
                error = message.error()
                if error is None:
                    records[partition].append(TopicRecord(partition, offset, message.key(), message.value()))
                    eof_at.pop(partition, None)  # more came after an end seen earlier: that was not the end
                elif error.code() == KafkaError._PARTITION_EOF:
                    eof_at[partition] = offset
                else:
                    raise KafkaException(error)
        return [record for partition in sorted(records) for record in records[partition]]
    finally:
        consumer.close()


def read_predictions_to_end(
    kafka: KafkaClientSettings, topic: str, schema_registry_url: str | None = None, timeout_s: float = 60.0
) -> list[Prediction]:
    """Every prediction on ``topic``, decoded; :class:`ValueError` names the first record that does not decode."""
    codec = AvroCodec(open_schema_store(schema_registry_url), f"{topic}-value", load_schema(PREDICTION_SCHEMA_FILE))
    predictions = []
    for record in read_to_end(kafka, topic, timeout_s):
        try:
            predictions.append(Prediction.from_avro(codec.decode(record.value or b"")))
        except Rejected as rejected:
            raise ValueError(f"{topic}[{record.partition}]@{record.offset} is not a prediction: {rejected}") from None
    return predictions


def tick_ids(topic: str, records: Iterable[TopicRecord]) -> set[TickId]:
    """The lineage of each tick record read from ``topic``.

    >>> sorted(tick_ids("ticks", [TopicRecord(1, 7, b"SPY", b""), TopicRecord(0, 3, b"KO", b"")]))
    [('ticks', 0, 3), ('ticks', 1, 7)]
    """
    return {(topic, record.partition, record.offset) for record in records}


class HasLineage(Protocol):
    @property
    def source_topic(self) -> str: ...
    @property
    def source_partition(self) -> int: ...
    @property
    def source_offset(self) -> int: ...


@dataclass(frozen=True)
class AnswerCount:
    """How many predictions each tick got, from the ticks and predictions read to their ends."""

    missing: frozenset[TickId]
    """Ticks without a prediction."""
    repeated: Mapping[TickId, int]
    """Ticks with more than one prediction, and how many."""
    strangers: frozenset[TickId]
    """Predictions whose lineage names no tick that was read."""

    @property
    def exactly_once(self) -> bool:
        return not (self.missing or self.repeated or self.strangers)

    def __str__(self) -> str:
        return (
            f"unanswered: {len(self.missing)} {sorted(self.missing)[:5]}; "
            f"answered twice or more: {len(self.repeated)} {sorted(self.repeated.items())[:5]}; "
            f"answers to unknown ticks: {len(self.strangers)} {sorted(self.strangers)[:5]}"
        )


def count_answers(ticks: Iterable[TickId], predictions: Iterable[HasLineage]) -> AnswerCount:
    """Match predictions to ticks by lineage (``source_topic``, ``source_partition``, ``source_offset``).

    >>> from types import SimpleNamespace as P
    >>> answers = [P(source_topic="t", source_partition=0, source_offset=o) for o in (0, 1, 1, 9)]
    >>> count = count_answers({("t", 0, 0), ("t", 0, 1), ("t", 0, 2)}, answers)
    >>> count.exactly_once, sorted(count.missing), dict(count.repeated), sorted(count.strangers)
    (False, [('t', 0, 2)], {('t', 0, 1): 2}, [('t', 0, 9)])
    >>> print(count)
    unanswered: 1 [('t', 0, 2)]; answered twice or more: 1 [(('t', 0, 1), 2)]; answers to unknown ticks: 1 [('t', 0, 9)]
    """
    known = set(ticks)
    per_tick = Counter((p.source_topic, p.source_partition, p.source_offset) for p in predictions)
    return AnswerCount(
        missing=frozenset(known - per_tick.keys()),
        repeated={tick: n for tick, n in per_tick.items() if n > 1},
        strangers=frozenset(per_tick.keys() - known),
    )
