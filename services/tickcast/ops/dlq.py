"""Dead letters: read them back, summarise them by reason, and replay chosen ones into the ticks topic.

A dead letter is the original tick record (key and value untouched) plus
``tickcast.*`` headers saying why it was refused and where it came from, so
after a fix (of the producer, or of tickcast) it can be sent again as it was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tickcast.common.settings import CommonSettings
from tickcast.ops.topic_reader import stream_topic

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
