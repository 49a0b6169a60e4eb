"""Read a whole topic once, every partition from its start to its end, with no consumer group.

The ops commands that answer from a topic's history (``tickcast dlq``, ``tickcast models``) need all of it
and nothing after it: they assign every partition from the beginning and stop at each partition's end
(``enable.partition.eof``), so a topic that keeps growing still gives an answer. Nothing is committed.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, KafkaError, Message, TopicPartition

from tickcast.common.kafka import new_consumer
from tickcast.common.settings import CommonSettings


def read_whole_topic(settings: CommonSettings, topic: str, what: str, timeout_s: float = 30.0) -> list[Message]:
    """Every record of ``topic`` as it stands now, in order per partition.

    ``what`` names the topic in errors (e.g. "dead-letter topic"): a missing topic raises LookupError,
    a read error RuntimeError, and partitions whose end was not reached within ``timeout_s`` TimeoutError.
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
        records: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=0.5):
                error = message.error()
                if error is None:
                    records.append(message)
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition() or 0)
                else:
                    raise RuntimeError(f"reading {topic!r} failed: {error}")
        if pending:
            raise TimeoutError(f"did not reach the end of {topic!r} partitions {sorted(pending)} within {timeout_s}s")
        return records
    finally:
        consumer.close()
