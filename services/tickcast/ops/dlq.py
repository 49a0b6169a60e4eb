"""Dead letters: read them back, summarise them by reason, and replay chosen ones into the ticks topic.

A dead letter is the original tick record (key and value untouched) plus
``tickcast.*`` headers saying why it was refused and where it came from, so
after a fix (of the producer, or of tickcast) it can be sent again as it was.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from confluent_kafka import KafkaError, Message

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.errors import Rejected
from tickcast.common.kafka import new_producer
from tickcast.common.settings import CommonSettings
from tickcast.ops.topic_reader import stream_topic

log = structlog.get_logger("tickcast.dlq")

HEADER_PREFIX = "tickcast."
REPLAYED_FROM = "tickcast.replayed_from"
#: Contract of the replay receipts (``tickcast dlq replay``): one per letter replayed.
RECEIPT_SCHEMA_FILE = "replay-receipt.avsc"


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
    """Every dead letter currently in the topic, in one list (tests; the CLI streams: :func:`stream_dead_letters`)."""
    return list(stream_dead_letters(settings, timeout_s))


def stream_dead_letters(settings: CommonSettings, timeout_s: float = 30.0) -> Iterator[DeadLetter]:
    """Every dead letter currently in the topic, oldest first per partition, yielded as read (then stops).

    A flood of refused ticks can leave millions of letters: nothing here holds more than the reader's batch.
    """
    for message in stream_topic(settings, settings.dlq_topic, "dead-letter topic", timeout_s):
        raw_headers = message.headers() or []
        pairs = list(raw_headers.items()) if isinstance(raw_headers, dict) else list(raw_headers)
        where = (message.partition() or 0, message.offset() or 0)
        yield DeadLetter(*where, message.key(), message.value(), parse_headers(pairs))


def summarise(letters: Iterable[DeadLetter]) -> Counter[str]:
    """Dead letters counted by reason code.

    >>> summarise([DeadLetter(0, 0, None, None, {"reason": "bad_price"})])
    Counter({'bad_price': 1})
    """
    return Counter(letter.reason for letter in letters)


def select(letters: Iterable[DeadLetter], reasons: set[str] | None, refs: set[str] | None) -> Iterator[DeadLetter]:
    """Letters matching any of ``reasons`` and any of ``refs`` (``partition:offset``); None means no filter.

    Lazy, so that a whole topic of letters is never held at once.

    >>> ls = [DeadLetter(0, 1, None, None, {"reason": "a"}), DeadLetter(1, 2, None, None, {"reason": "b"})]
    >>> [x.ref for x in select(ls, {"b"}, None)], [x.ref for x in select(ls, None, {"0:1"})]
    (['1:2'], ['0:1'])
    """
    return (
        letter
        for letter in letters
        if (reasons is None or letter.reason in reasons) and (refs is None or letter.ref in refs)
    )


def replay_headers(letter: DeadLetter, dlq_topic: str) -> list[tuple[str, str | bytes | None]]:
    """Headers of a replayed tick: where it was parked, so a second rejection can be traced to the first.

    >>> replay_headers(DeadLetter(2, 9, None, None, {}), "ticks.dlq")
    [('tickcast.replayed_from', b'ticks.dlq:2:9')]
    """
    return [(REPLAYED_FROM, f"{dlq_topic}:{letter.ref}".encode())]


@dataclass(frozen=True, slots=True)
class Receipt:
    """A dead letter already replayed (one record of the receipts topic, :data:`RECEIPT_SCHEMA_FILE`)."""

    ref: str
    source: str
    replayed_at_ms: int


def letter_source(letter: DeadLetter) -> str:
    """``topic:partition:offset`` of the refused record, from the letter's headers ("" without them).

    Two letters at one position of the dead-letter topic (deleted and created again in between) differ here.

    >>> letter_source(DeadLetter(0, 4, None, None, {"source.topic": "ticks", "source.partition": "3",
    ...                                              "source.offset": "77"}))
    'ticks:3:77'
    """
    h = letter.headers
    if not all(name in h for name in ("source.topic", "source.partition", "source.offset")):
        return ""
    return f"{h['source.topic']}:{h['source.partition']}:{h['source.offset']}"


@dataclass(frozen=True, slots=True)
class Delivered:
    """A replayed tick the broker confirmed, and the letter it came from (without its payload)."""

    letter: DeadLetter
    ticks_topic: str
    tick_partition: int
    tick_offset: int
    at_ms: int

    @classmethod
    def of(cls, letter: DeadLetter, message: Message) -> Delivered:
        """From a delivery report of ``letter``'s tick; keeps only its headers, not its bytes."""
        header_only = DeadLetter(letter.partition, letter.offset, None, None, letter.headers)
        at_ms = int(time.time() * 1000)
        return cls(header_only, message.topic() or "", message.partition() or 0, message.offset() or 0, at_ms)


def receipt_record(delivered: Delivered, dlq_topic: str) -> dict[str, Any]:
    """The receipt of a letter replayed (its Kafka key: the letter's ``partition:offset``)."""
    letter = delivered.letter
    return {
        "dead_letter_topic": dlq_topic,
        "dead_letter_partition": letter.partition,
        "dead_letter_offset": letter.offset,
        "reason": letter.reason,
        "source": letter_source(letter),
        "ticks_topic": delivered.ticks_topic,
        "tick_partition": delivered.tick_partition,
        "tick_offset": delivered.tick_offset,
        "replayed_at": delivered.at_ms,
    }


class ReceiptWriter:
    """Writes receipts to the receipts topic (an idempotent producer) and counts those the broker refused."""

    def __init__(self, settings: CommonSettings, **overrides: Any) -> None:
        self.topic, self.dlq_topic = settings.dlq_receipts_topic, settings.dlq_topic
        self.codec = receipt_codec(settings)
        self.failed = 0
        self.last_error: str | None = None
        self._producer = new_producer(settings, **overrides)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failed += 1
            self.last_error = str(err)
            log.error("replay_receipt_failed", error=str(err), topic=self.topic)

    def write(self, delivered: Delivered) -> None:
        value = self.codec.encode(receipt_record(delivered, self.dlq_topic))
        key = delivered.letter.ref.encode()
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:
                self._producer.poll(0.05)  # queue full: serve delivery reports until there is room
        self._producer.poll(0)

    def close(self, timeout_s: float = 30.0) -> int:
        """Flush; return how many receipts are still undelivered (those failed are in :attr:`failed`)."""
        return int(self._producer.flush(timeout_s))


def receipt_codec(settings: CommonSettings) -> AvroCodec:
    return AvroCodec(
        open_schema_store(settings.schema_registry_url, settings),
        f"{settings.dlq_receipts_topic}-value",
        load_schema(RECEIPT_SCHEMA_FILE),
    )


def read_receipts(
    settings: CommonSettings, reasons: set[str] | None, refs: set[str] | None, timeout_s: float = 30.0
) -> dict[str, Receipt]:
    """Receipts of letters of ``reasons`` and ``refs`` (None: all), by ``partition:offset``; the latest wins.

    Only these are held, one small entry per letter replayed. A record that is not a receipt is logged and
    skipped. Raises LookupError when the receipts topic does not exist (no replay yet, or topics not created).
    """
    codec = receipt_codec(settings)
    found: dict[str, Receipt] = {}
    for message in stream_topic(settings, settings.dlq_receipts_topic, "replay receipts topic", timeout_s):
        if not (value := message.value()):
            continue  # a tombstone: nothing says to write one, and it forgets nothing replay needs
        try:
            record = codec.decode(value)
        except Rejected as exc:
            log.warning("replay_receipt_undecodable", partition=message.partition(), offset=message.offset(),
                        error=str(exc))  # fmt: skip
            continue
        if record["dead_letter_topic"] != settings.dlq_topic:
            continue
        ref = f"{record['dead_letter_partition']}:{record['dead_letter_offset']}"
        if (reasons is None or record["reason"] in reasons) and (refs is None or ref in refs):
            found[ref] = Receipt(ref, record["source"], int(record["replayed_at"]))
    return found


@dataclass(slots=True)
class Skipped:
    """Letters not sent because a receipt says they were replayed already: how many, and when they were."""

    count: int = 0
    first_ms: int | None = None
    last_ms: int | None = None

    def add(self, receipt: Receipt) -> None:
        at = receipt.replayed_at_ms
        self.count += 1
        self.first_ms = at if self.first_ms is None else min(at, self.first_ms)
        self.last_ms = at if self.last_ms is None else max(at, self.last_ms)

    def __str__(self) -> str:
        """What a replay says of the letters it skipped.

        >>> s = Skipped()
        >>> s.add(Receipt("0:1", "", 1_700_000_000_000))
        >>> str(s)
        'skipped 1 already replayed at 2023-11-14T22:13:20Z'
        """
        if self.first_ms is None or self.last_ms is None:
            return "skipped 0"
        first, last = _utc(self.first_ms), _utc(self.last_ms)
        return f"skipped {self.count} already replayed at {first}" + (f" to {last}" if last != first else "")


def not_yet_replayed(
    letters: Iterable[DeadLetter], receipts: dict[str, Receipt], skipped: Skipped
) -> Iterator[DeadLetter]:
    """``letters`` without those a receipt says were replayed, which are counted in ``skipped``.

    A receipt stands for the letter at its position only if it names the same refused record: a dead-letter
    topic deleted and created again starts its offsets over, and its new letters were never replayed.

    >>> old = DeadLetter(0, 1, None, None, {"source.topic": "t", "source.partition": "0", "source.offset": "9"})
    >>> new = DeadLetter(0, 2, None, None, {"source.topic": "t", "source.partition": "0", "source.offset": "5"})
    >>> receipts = {"0:1": Receipt("0:1", "t:0:9", 1_000), "0:2": Receipt("0:2", "t:0:1", 1_000)}
    >>> skipped = Skipped()
    >>> [x.ref for x in not_yet_replayed([old, new], receipts, skipped)], skipped.count
    (['0:2'], 1)
    """
    for letter in letters:
        receipt = receipts.get(letter.ref)
        if receipt is not None and receipt.source == letter_source(letter):
            skipped.add(receipt)
            continue
        yield letter


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
