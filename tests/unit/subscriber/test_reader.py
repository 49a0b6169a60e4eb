"""The prediction reader hands records over as soon as they arrive, not after a batch fills or a timeout."""

from __future__ import annotations

from typing import Any

from tickcast.subscriber.reader import PredictionReader
from tickcast.subscriber.settings import SubscriberSettings


class QueuedConsumer:
    """Stands in for confluent-kafka's Consumer: a queue of records, and a record of how it was asked."""

    def __init__(self, queued: list[Any]) -> None:
        self.queued = queued
        self.waits: list[float] = []

    def poll(self, timeout: float) -> Any:
        self.waits.append(timeout)
        return self.queued.pop(0) if self.queued else None

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        self.waits.append(timeout)
        taken, self.queued = self.queued[:num_messages], self.queued[num_messages:]
        return taken

    def close(self) -> None:
        pass


class Record:
    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "predictions"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 0

    def value(self) -> bytes:
        return b"not avro"


def test_poll_waits_only_for_the_first_record_and_takes_what_is_queued() -> None:
    reader = PredictionReader(SubscriberSettings(bootstrap_servers="127.0.0.1:1"))
    consumer = QueuedConsumer([Record(), Record(), Record()])
    reader._consumer = consumer  # type: ignore[assignment]
    assert len(reader.poll(timeout_s=0.5)) == 3
    # Blocking only until the first record; what else is queued is taken without waiting.
    assert consumer.waits == [0.5, 0]
    assert reader.poll(timeout_s=0.5) == []
    reader.close()
