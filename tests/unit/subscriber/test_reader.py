"""Unit tests for ``tickcast.subscriber.reader``: a read returns as soon as something arrived."""

from __future__ import annotations

from confluent_kafka import KafkaError

from tickcast.subscriber.reader import PredictionReader
from tickcast.subscriber.settings import SubscriberSettings


class Record:
    """A consumed message carrying an error (decoding needs no schema then); enough to be counted."""

    def __init__(self, offset: int) -> None:
        self._offset = offset

    def error(self) -> KafkaError:
        return KafkaError(KafkaError._MSG_TIMED_OUT)

    def topic(self) -> str:
        return "predictions"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


class BatchingConsumer:
    """librdkafka's timing on a fake clock: ``consume(n, timeout)`` returns when it has ``n`` messages or
    its timeout passed; ``poll(timeout)`` returns the first message as soon as there is one."""

    def __init__(self, arrivals: list[float]) -> None:
        self.now = 0.0
        self.arrivals = arrivals
        self.taken = 0

    def _ready(self, by: float) -> int:
        return sum(1 for at in self.arrivals[self.taken :] if at <= by)

    def _take(self, count: int) -> list[Record]:
        records = [Record(self.taken + i) for i in range(count)]
        self.taken += count
        return records

    def consume(self, num_messages: int, timeout: float) -> list[Record]:
        pending = self.arrivals[self.taken :]
        if len(pending) >= num_messages and pending[num_messages - 1] <= self.now + timeout:
            self.now = max(self.now, pending[num_messages - 1])
            return self._take(num_messages)
        self.now += max(timeout, 0.0)
        return self._take(self._ready(self.now))

    def poll(self, timeout: float) -> Record | None:
        pending = self.arrivals[self.taken :]
        if pending and pending[0] <= self.now + timeout:
            self.now = max(self.now, pending[0])
            return self._take(1)[0]
        self.now += timeout
        return None


def reader_with(consumer: BatchingConsumer) -> PredictionReader:
    reader = PredictionReader(SubscriberSettings(bootstrap_servers="127.0.0.1:1"))
    reader._consumer.close()
    reader._consumer = consumer  # type: ignore[assignment]
    return reader


def test_a_read_returns_when_the_first_record_arrives_not_when_its_timeout_ends() -> None:
    consumer = BatchingConsumer(arrivals=[0.010, 0.010, 0.150])
    got = reader_with(consumer).poll(timeout_s=0.2)
    assert (len(got), consumer.now) == (2, 0.010)


def test_a_read_with_nothing_to_read_waits_its_timeout() -> None:
    consumer = BatchingConsumer(arrivals=[])
    assert reader_with(consumer).poll(timeout_s=0.2) == []
    assert consumer.now == 0.2
