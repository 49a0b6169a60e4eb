"""``tickcast dlq list|summary|replay`` read the dead-letter topic as a stream: a flood of refused ticks (a month of
them can be millions of letters) must not be held in memory at once."""

from __future__ import annotations

import tracemalloc
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError
from typer.testing import CliRunner

from tickcast.cli import app as cli
from tickcast.cli import common, dlq
from tickcast.ops import dlq as ops_dlq
from tickcast.ops import topic_reader
from tickcast.producer import publisher

LETTERS = 20_000
VALUE_BYTES = 4_000  # 80 MB of letters: held at once, far above the bound below
BOUND_BYTES = 8_000_000


class Record:
    """What the reader uses of a confluent_kafka Message: a dead letter, or the partition's end."""

    def __init__(self, offset: int, eof: bool = False) -> None:
        self._offset, self._eof = offset, eof

    def error(self) -> Any:
        return SimpleNamespace(code=lambda: KafkaError._PARTITION_EOF) if self._eof else None

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"SPY"

    def value(self) -> bytes:
        return bytes(VALUE_BYTES)  # a new object per call, as librdkafka hands out each message's own copy

    def headers(self) -> list[tuple[str, bytes]]:
        return [("tickcast.reason", b"bad_price" if self._offset % 2 else b"bad_size")]


class FloodConsumer:
    """A dead-letter topic of ``LETTERS`` records on one partition, made as they are consumed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.next_offset = 0

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions={0: None})})

    def get_watermark_offsets(self, partition: Any, timeout: float | None = None, cached: bool = False) -> Any:
        return 0, LETTERS

    def assign(self, partitions: Any) -> None:
        pass

    def consume(self, num_messages: int, timeout: float) -> list[Record]:
        end = min(self.next_offset + num_messages, LETTERS)
        batch = [Record(offset) for offset in range(self.next_offset, end)]
        if end == LETTERS:
            batch.append(Record(end, eof=True))
        self.next_offset = end
        return batch

    def close(self) -> None:
        pass


class CountingPublisher:
    sent = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.stats = publisher.DeliveryStats()

    def publish_raw(self, key: bytes | None, value: bytes | None, headers: Any, *args: Any, **kwargs: Any) -> None:
        CountingPublisher.sent += 1

    def close(self, *args: Any) -> int:
        return 0


class FakeReceipts:
    failed, last_error = 0, None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def write(self, delivered: Any) -> None:
        pass

    def close(self) -> int:
        return 0


@pytest.fixture(autouse=True)
def flood(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topic_reader, "new_consumer", FloodConsumer)
    monkeypatch.setattr(common, "require_broker", lambda *args: None)
    monkeypatch.setattr(publisher, "TickPublisher", CountingPublisher)
    monkeypatch.setattr(dlq, "_ensure_receipts_topic", lambda settings: None)
    monkeypatch.setattr(dlq, "_replayed", lambda *args: {})
    monkeypatch.setattr(ops_dlq, "ReceiptWriter", FakeReceipts)
    CountingPublisher.sent = 0


def peak_bytes(args: list[str]) -> tuple[int, Any]:
    tracemalloc.start()
    try:
        result = CliRunner().invoke(cli, ["dlq", *args])
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["list", "--reason", "bad_price", "--limit", "3"], "dead letters (10000 matching)"),
        (["list", "--json", "--limit", "3"], '"ref": "0:2"'),
        (["summary"], "total=20000"),
        (["replay", "--reason", "bad_price"], "replayed=10000 to=ticks"),
        (["replay", "--reason", "bad_price", "--dry-run"], "would replay 10000 dead letters"),
    ],
)
def test_the_dead_letter_topic_is_read_in_bounded_memory(args: list[str], said: str) -> None:
    peak, result = peak_bytes(args)
    assert result.exit_code == 0 and said in result.output, result.output
    assert peak < BOUND_BYTES, (
        f"`tickcast dlq {' '.join(args)}` held {peak / 1e6:.0f} MB at its peak over {LETTERS} letters of "
        f"{VALUE_BYTES} bytes: the topic was read whole into memory"
    )
