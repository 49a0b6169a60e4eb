"""Reading a topic to its end sees every record, on a broker whose listed end offsets can read low (Tansu)."""

from __future__ import annotations

import pytest

from tickcast.common.kafka import ensure_topics, new_producer, wait_for_broker
from tickcast.common.security import KafkaClientSettings
from tickcast.testing.drain import read_to_end

pytestmark = pytest.mark.integration


def test_read_to_end_sees_records_batched_past_the_listed_end_and_empty_partitions(broker: object, unique: str) -> None:
    kafka = KafkaClientSettings(bootstrap_servers=broker.bootstrap_servers)  # type: ignore[attr-defined]
    topic = f"drain-{unique}"
    ensure_topics(wait_for_broker(kafka), [topic], partitions=3, replication_factor=1)
    # Lingering puts the 500 records into few batches: Tansu then lists an end far below 500 for partition 1.
    batched = new_producer(kafka, **{"linger.ms": 50})
    for i in range(500):
        batched.produce(topic, value=b"%d" % i, partition=1)
    batched.produce(topic, value=b"last", partition=2)
    assert batched.flush(30) == 0

    records = read_to_end(kafka, topic, timeout_s=30)

    by_partition = {p: [r.offset for r in records if r.partition == p] for p in range(3)}
    assert by_partition == {0: [], 1: list(range(500)), 2: [0]}
    assert [r.value for r in records if r.partition == 1] == [b"%d" % i for i in range(500)]
