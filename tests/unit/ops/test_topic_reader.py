"""Reading a topic once stops at its end as it stood when the read began, however fast records keep coming."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError

from tickcast.common.settings import CommonSettings
from tickcast.ops import topic_reader

AT_START = 5


class Record:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class EndOfPartition(Record):
    def __init__(self, partition: int) -> None:
        super().__init__(partition, -1)

    def error(self) -> Any:  # type: ignore[override]
        return SimpleNamespace(code=lambda: KafkaError._PARTITION_EOF)


class GrowingTopic:
    """Two partitions of AT_START records each, to which a record is appended with every batch consumed (as the
    worker appends a dead letter for each tick replayed from one), for GROWTH batches."""

    GROWTH = 50

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.written = {0: AT_START, 1: AT_START}
        self.fetched_end = {0: -1001, 1: -1001}  # librdkafka's OFFSET_INVALID until a fetch says
        self.position = {0: 0, 1: 0}
        self.batches = 0

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions={0: None, 1: None})})

    def get_watermark_offsets(self, partition: Any, timeout: float | None = None, cached: bool = False) -> Any:
        assert cached, "ListOffsets can fall short of the end on Tansu: the fetch's high watermark is exact"
        return 0, self.fetched_end[partition.partition]

    def assign(self, partitions: Any) -> None:
        pass

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        self.batches += 1
        batch: list[Any] = []
        for partition in (0, 1):
            self.fetched_end[partition] = self.written[partition]
            if self.position[partition] < self.written[partition]:
                batch.append(Record(partition, self.position[partition]))
                self.position[partition] += 1
            else:
                batch.append(EndOfPartition(partition))
            if self.batches <= self.GROWTH:
                self.written[partition] += 1
        return batch

    def close(self) -> None:
        pass


def test_a_topic_is_read_to_its_end_as_it_stood_when_the_read_began(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topic_reader, "new_consumer", GrowingTopic)
    records = topic_reader.read_whole_topic(CommonSettings(bootstrap_servers="k:9092"), "t.dlq", "dead-letter topic")
    read = sorted((r.partition(), r.offset()) for r in records)
    assert read == [(p, o) for p in (0, 1) for o in range(AT_START)], f"records written after the read began: {read}"
