"""What the gateway keeps: the latest prediction per symbol (bounded, LRU) and a ring of recent ones per partition."""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from tickcast.common.records import Prediction


@dataclass(frozen=True, slots=True)
class Published:
    """One prediction as the gateway serves it: where it is on the predictions topic, and its JSON once encoded."""

    partition: int
    offset: int
    symbol: str
    received_at: float
    """``time.monotonic()`` when the gateway read it (fan-out delay is measured from here)."""
    predicted_at_ms: float
    body: str
    """The JSON object sent to clients: the prediction's fields plus ``partition`` and ``offset``."""
    worker: str = ""
    tick_produced_at_ms: int = 0
    # Encoded once here, when the prediction arrives, for every GET and every one-symbol SSE client after it.
    etag: bytes = field(init=False, repr=False, compare=False)
    """The strong ETag of this prediction alone: its topic position."""
    json_head: bytes = field(init=False, repr=False, compare=False)
    """The body up to the value of ``age_ms``, the one field that changes per request."""
    sse_frame: bytes = field(init=False, repr=False, compare=False)
    """Its SSE event for a stream whose id is this one partition's position (one-symbol streams)."""

    def __post_init__(self) -> None:
        body = self.body.encode()
        position = f"{self.partition}:{self.offset}".encode()
        object.__setattr__(self, "etag", b'"' + position + b'"')
        object.__setattr__(self, "json_head", body[:-1] + b',"age_ms":')
        object.__setattr__(self, "sse_frame", b"id: " + position + b"\nevent: prediction\ndata: " + body + b"\n\n")

    @classmethod
    def of_record(cls, partition: int, offset: int, record: dict[str, Any], received_at: float) -> Published:
        """Encode a decoded Avro record of the predictions contract once, for every GET and every SSE client.

        ``record`` is the caller's fresh decode and becomes the body as it is (``partition`` and ``offset``
        are added to it): copying it, or building a :class:`Prediction` only to turn it back into a dict,
        cost more than the encoding. orjson encodes it in ~2 us where ``json.dumps`` took ~19 us (a prediction
        with three horizons), on the thread that shares the GIL with the loop answering GETs. The source
        refuses a record with a NaN or an infinity first (:func:`first_non_finite`).

        >>> p = Prediction("SPY", 1, 2.0, 0.5, 2.0001, 1, "READY", "m", "1", 3, "t", 0, 9, 1, 2_000, "w")
        >>> Published.of_record(4, 17, p.to_avro(), 0.0) == Published.of(4, 17, p, 0.0)
        True
        """
        record["partition"], record["offset"] = partition, offset
        return cls(
            partition,
            offset,
            record["symbol"],
            received_at,
            record["predicted_at"] / 1000.0,
            orjson.dumps(record).decode(),
            record["worker"],
            record["tick_produced_at"],
        )

    @classmethod
    def of(cls, partition: int, offset: int, prediction: Prediction, received_at: float) -> Published:
        """Encode ``prediction`` once, for every GET and every SSE client.

        >>> p = Prediction("SPY", 1, 2.0, 0.5, 2.0001, 1, "READY", "m", "1", 3, "t", 0, 9, 1, 2_000, "w")
        >>> published = Published.of(4, 17, p, 0.0)
        >>> orjson.loads(published.body)["offset"], published.predicted_at_ms
        (17, 2.0)
        """
        fields: dict[str, Any] = prediction.to_avro()
        fields["partition"], fields["offset"] = partition, offset
        body = orjson.dumps(fields).decode()
        return cls(
            partition,
            offset,
            prediction.symbol,
            received_at,
            prediction.predicted_at / 1000.0,
            body,
            prediction.worker,
            prediction.tick_produced_at,
        )


def first_non_finite(record: dict[str, Any]) -> str | None:
    """Where a decoded prediction holds a NaN or an infinity (the first such field's path); None if nowhere.

    The contract's doubles allow them, JSON has no such numbers, and the served shape declares none of these
    fields nullable: a client that parses strictly would fail on ``null``. No worker publishes one (the
    forecaster replaces a non-finite forecast), so one here was written by something else, and the gateway
    refuses it, counted and logged, rather than serve it.

    >>> p = Prediction("SPY", 1, 2.0, 0.5, 2.0001, 1, "READY", "m", "1", 3, "t", 0, 9, 1, 2_000, "w").to_avro()
    >>> first_non_finite(p) is None
    True
    >>> first_non_finite({**p, "predicted_price": float("inf")})
    'predicted_price'
    >>> horizons = [{"horizon": "1t", "predicted_price": 2.0}, {"horizon": "10s", "predicted_return_bps": -math.inf}]
    >>> first_non_finite({**p, "forecasts": horizons})
    'forecasts[1].predicted_return_bps'
    """
    for name, value in record.items():
        if type(value) is float:
            if not math.isfinite(value):
                return name
        elif type(value) is list:
            for index, item in enumerate(value):
                if type(item) is dict:
                    inner = first_non_finite(item)
                    if inner is not None:
                        return f"{name}[{index}].{inner}"
    return None


class LatestCache:
    """The latest prediction of each symbol, at most ``max_symbols`` of them: the least recently updated go first.

    A prediction older (by topic offset) than the one held is ignored, so replaying a partition is harmless.

    >>> cache = LatestCache(max_symbols=2)
    >>> for offset, symbol in enumerate(["A", "B", "A", "C"]):
    ...     _ = cache.put(Published(0, offset, symbol, 0.0, 0.0, "{}"))
    >>> sorted(p.symbol for p in cache.symbols()), cache.get("A").offset, cache.get("B") is None, cache.evicted
    (['A', 'C'], 2, True, 1)
    """

    def __init__(self, max_symbols: int) -> None:
        self.max_symbols = max_symbols
        self._latest: OrderedDict[str, Published] = OrderedDict()
        self.evicted = 0

    def put(self, item: Published) -> bool:
        """Keep ``item`` if it is newer than what is held for its symbol; True if kept."""
        held = self._latest.get(item.symbol)
        if held is not None and (held.partition, held.offset) >= (item.partition, item.offset):
            return False
        self._latest[item.symbol] = item
        self._latest.move_to_end(item.symbol)
        while len(self._latest) > self.max_symbols:
            self._latest.popitem(last=False)
            self.evicted += 1
        return True

    def get(self, symbol: str) -> Published | None:
        return self._latest.get(symbol)

    def symbols(self) -> Iterator[Published]:
        return iter(self._latest.values())

    def __len__(self) -> int:
        return len(self._latest)


class PartitionRing:
    """The last ``size`` predictions of one partition, for resuming streams; knows the oldest offset it can answer.

    >>> ring = PartitionRing(size=2)
    >>> for offset in (10, 11, 12):
    ...     ring.append(Published(0, offset, "A", 0.0, 0.0, "{}"))
    >>> ring.floor, ring.head, [p.offset for p in ring.after(10)]
    (11, 12, [11, 12])
    >>> ring.covers(9), ring.covers(10)
    (False, True)
    """

    def __init__(self, size: int) -> None:
        self._items: deque[Published] = deque(maxlen=size)
        self.floor = 0
        """Every offset from here on that was read is in the ring (until the first read: from 0, optimistically)."""
        self.head = -1
        """The last offset read (floor - 1 before any)."""
        self.first = 0
        """Where this gateway began reading the partition: every record from here on went through it."""
        self._started = False

    def start(self, offset: int) -> None:
        """The source starts (or reached the end) at ``offset``; before any record, that is where the ring begins."""
        if not self._started:
            self._started = True
            self.floor, self.head, self.first = offset, offset - 1, offset

    def append(self, item: Published) -> None:
        if item.offset <= self.head:
            return
        self.start(item.offset)
        if len(self._items) == self._items.maxlen:
            self.floor = self._items[0].offset + 1
        self._items.append(item)
        self.head = item.offset

    def covers(self, position: int) -> bool:
        """Whether everything after ``position`` (the last offset a client had) is still here."""
        return position + 1 >= self.floor

    def after(self, position: int) -> list[Published]:
        """The items after offset ``position``, oldest first.

        Walks back from the newest, so it costs what it returns: a new client (at the head) gets an empty list
        at once. Scanning the whole ring for each of 1,000 clients connecting was 5 million steps, a burst that
        delayed every client already streaming.

        >>> ring = PartitionRing(size=5)
        >>> for offset in (3, 4, 7, 8):  # offsets may have gaps (transaction markers, compaction)
        ...     ring.append(Published(0, offset, "A", 0.0, 0.0, "{}"))
        >>> [p.offset for p in ring.after(4)], [p.offset for p in ring.after(5)], ring.after(8), len(ring.after(-1))
        ([7, 8], [7, 8], [], 4)
        """
        if position >= self.head:
            return []
        newer: list[Published] = []
        for item in reversed(self._items):
            if item.offset <= position:
                break
            newer.append(item)
        newer.reverse()
        return newer
