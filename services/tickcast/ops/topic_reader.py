"""Read a whole topic once, every partition from its start to its end, with no consumer group.

The ops commands that answer from a topic's history (``tickcast dlq``, ``tickcast models``) need all of it
and nothing after it: they assign every partition from the beginning and stop at each partition's end as it
stood when the read began (the high watermark of the first fetch, or ``enable.partition.eof``), so a topic that
keeps growing still gives an answer. Nothing is committed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from tickcast.common.kafka import new_consumer
from tickcast.common.settings import CommonSettings


def read_whole_topic(settings: CommonSettings, topic: str, what: str, timeout_s: float = 30.0) -> list[Message]:
    """Every record of ``topic`` as it stands now, in order per partition, in one list (see :func:`stream_topic`)."""
    return list(stream_topic(settings, topic, what, timeout_s))


def stream_topic(settings: CommonSettings, topic: str, what: str, timeout_s: float = 30.0) -> Iterator[Message]:
    """Every record of ``topic`` as it stands now, in order per partition, yielded as it is read.

    Only one batch is held at a time, so a topic of millions of records (a flood of dead letters) is read in
    bounded memory. The consumer is closed when the end is reached or the iterator is closed.
    ``what`` names the topic in errors (e.g. "dead-letter topic"): a missing topic raises LookupError,
    a read error RuntimeError, and partitions whose end was not reached, with nothing read for ``timeout_s``,
    TimeoutError.
    """
    consumer = new_consumer(
        settings,
        f"tickcast-reader-{uuid.uuid4().hex[:12]}",
        **{"enable.auto.commit": False, "enable.partition.eof": True},
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise LookupError(f"{what} {topic!r} does not exist")
        partitions = sorted(metadata.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = set(partitions)
        # Each partition's end as it stood when the read began: the high watermark of the first fetch response
        # for it (exact on Apache Kafka and on Tansu, whose ListOffsets "latest" can fall short, see
        # tickcast.testing.drain). Records written while reading are not read: without this a replay, reading
        # dead letters as it sends them back, read the letters its own refused ticks became, and sent those too.
        ends: dict[int, int | None] = {}
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=500, timeout=0.5)
            if batch:
                # A deadline on progress, not on the whole read: a topic of millions of records, or a reader
                # that replays each record as it reads, may take longer than timeout_s and still be moving.
                deadline = time.monotonic() + timeout_s
            for message in batch:
                error, partition = message.error(), message.partition() or 0
                if error is None:
                    if partition not in ends:
                        ends[partition] = _fetched_end(consumer, topic, partition)
                    end, offset = ends[partition], message.offset() or 0
                    if partition in pending and (end is None or offset < end):
                        yield message
                    if end is not None and offset >= end - 1:
                        pending.discard(partition)
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(partition)
                else:
                    raise RuntimeError(f"reading {topic!r} failed: {error}")
        if pending:
            raise TimeoutError(
                f"did not reach the end of {topic!r} partitions {sorted(pending)}: nothing read for {timeout_s}s"
            )
    finally:
        consumer.close()


def _fetched_end(consumer: Consumer, topic: str, partition: int) -> int | None:
    """The partition's high watermark in the last fetch response (librdkafka's cache); None if not known."""
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
    return int(high) if high >= 0 else None
