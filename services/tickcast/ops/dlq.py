"""Dead letters: read them back, summarise them by reason, and replay chosen ones into the ticks topic.

A dead letter is the original tick record (key and value untouched) plus
``tickcast.*`` headers saying why it was refused and where it came from, so
after a fix (of the producer, or of tickcast) it can be sent again as it was.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from tickcast.common.kafka import new_consumer
from tickcast.common.settings import CommonSettings

HEADER_PREFIX = "tickcast."
REPLAYED_FROM = "tickcast.replayed_from"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of the dead-letter topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    @property
    def reason(self) -> str:
        return self.headers.get("reason", "unknown")

    @property
    def message(self) -> str:
        return self.headers.get("message", "")

    @property
    def ref(self) -> str:
        """``partition:offset`` in the dead-letter topic, the handle used to pick letters for replay."""
        return f"{self.partition}:{self.offset}"


def parse_headers(raw: Iterable[tuple[str, str | bytes | None]]) -> dict[str, str]:
    """``tickcast.*`` headers as text, prefix removed.

    >>> parse_headers([("tickcast.reason", b"bad_price"), ("other", b"x")])
    {'reason': 'bad_price'}
    """
    out: dict[str, str] = {}
    for name, value in raw:
        if name.startswith(HEADER_PREFIX):
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
            out[name[len(HEADER_PREFIX) :]] = text
    return out


def read_dead_letters(settings: CommonSettings, timeout_s: float = 30.0) -> list[DeadLetter]:
    """Every dead letter currently in the topic, oldest first per partition (reads to the end, then stops)."""
    consumer = new_consumer(
        settings,
        f"tickcast-dlq-reader-{uuid.uuid4().hex[:12]}",
        **{"enable.auto.commit": False, "enable.partition.eof": True},
    )
    try:
        metadata = consumer.list_topics(settings.dlq_topic, timeout=10).topics.get(settings.dlq_topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise LookupError(f"dead-letter topic {settings.dlq_topic!r} does not exist")
        partitions = sorted(metadata.partitions)
        consumer.assign([TopicPartition(settings.dlq_topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = set(partitions)
        letters: list[DeadLetter] = []
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition() or 0)
                        continue
                    raise RuntimeError(f"reading {settings.dlq_topic!r} failed: {error}")
                raw_headers = message.headers() or []
                pairs = list(raw_headers.items()) if isinstance(raw_headers, dict) else list(raw_headers)
                letters.append(
                    DeadLetter(
                        message.partition() or 0, message.offset() or 0, message.key(), message.value(),
                        parse_headers(pairs),
                    )
                )  # fmt: skip
        if pending:
            raise TimeoutError(
                f"did not reach the end of {settings.dlq_topic!r} partitions {sorted(pending)} within {timeout_s}s"
            )
        return letters
    finally:
        consumer.close()


def summarise(letters: Iterable[DeadLetter]) -> Counter[str]:
    """Dead letters counted by reason code.

    >>> summarise([DeadLetter(0, 0, None, None, {"reason": "bad_price"})])
    Counter({'bad_price': 1})
    """
    return Counter(letter.reason for letter in letters)


def select(letters: Iterable[DeadLetter], reasons: set[str] | None, refs: set[str] | None) -> list[DeadLetter]:
    """Letters matching any of ``reasons`` and any of ``refs`` (``partition:offset``); None means no filter.

    >>> ls = [DeadLetter(0, 1, None, None, {"reason": "a"}), DeadLetter(1, 2, None, None, {"reason": "b"})]
    >>> [x.ref for x in select(ls, {"b"}, None)], [x.ref for x in select(ls, None, {"0:1"})]
    (['1:2'], ['0:1'])
    """
    return [
        letter
        for letter in letters
        if (reasons is None or letter.reason in reasons) and (refs is None or letter.ref in refs)
    ]


def replay_headers(letter: DeadLetter, dlq_topic: str) -> list[tuple[str, str | bytes | None]]:
    """Headers of a replayed tick: where it was parked, so a second rejection can be traced to the first.

    >>> replay_headers(DeadLetter(2, 9, None, None, {}), "ticks.dlq")
    [('tickcast.replayed_from', b'ticks.dlq:2:9')]
    """
    return [(REPLAYED_FROM, f"{dlq_topic}:{letter.ref}".encode())]
