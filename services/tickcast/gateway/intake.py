"""Records read off Kafka, decoded on the event loop a few at a time, into the feed.

The consumer thread only fetches (librdkafka releases the GIL meanwhile) and hands each batch over as raw
messages. Decoding them in that thread made it compete with the event loop for the GIL: the loop releases
it on every socket write, and each time it wanted it back it could wait a whole switch interval (5 ms) for
the decoding thread, so one batch delayed a thousand clients' writes by far more than its own decoding
took. On the loop, records are decoded for at most :data:`SLICE_S` per callback, and whatever the loop
was waiting to do (client writes, GET answers) runs between two slices.

Bounded: the thread fetches again only while fewer than :data:`MAX_PENDING` records wait here, so a loop
that falls behind slows the fetching, not the memory.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import structlog
from confluent_kafka import KafkaError

from tickcast.common.errors import Rejected
from tickcast.gateway.cache import Published
from tickcast.gateway.feed import PredictionFeed

log = structlog.get_logger("tickcast.gateway")

#: Decoding per event-loop callback, in CPU seconds of the loop's thread: about the longest a GET or a client
#: write waits for it. CPU time, not wall time: on a busy machine the thread is preempted within a slice, and a
#: wall-clock budget then decoded a record or two per loop turn and fell behind the stream.
SLICE_S = 0.002
#: Records decoded per callback at least, whatever the clock says: the loop's other work per turn grows with
#: what was decoded, so a floor keeps decoding ahead of the stream.
MIN_SLICE = 16
#: Records waiting to be decoded before the consumer thread stops fetching: two of its fetches (2,000 each).
#: More only raised the peak memory of a cold start (reading the warm window), never the throughput.
MAX_PENDING = 4_000


class Message(Protocol):
    """What :class:`Intake` reads of a confluent-kafka message."""

    def error(self) -> Any: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def value(self) -> bytes | None: ...


class Intake:
    """Raw messages in (from the consumer thread), decoded predictions out to ``feed`` (on the loop).

    >>> import asyncio, json
    >>> from tickcast.common.records import Prediction
    >>> from tickcast.gateway.settings import GatewaySettings
    >>> p = Prediction("SPY", 1, 2.0, 0.5, 2.0001, 1, "READY", "m", "1", 3, "t", 0, 9, 1, 2_000, "w")
    >>> class Raw:
    ...     def __init__(self, offset): self.offset_ = offset
    ...     def error(self): return None
    ...     def topic(self): return "predictions"
    ...     def partition(self): return 0
    ...     def offset(self): return self.offset_
    ...     def value(self): return json.dumps(p.to_avro()).encode()
    >>> async def main():
    ...     feed = PredictionFeed(GatewaySettings(partitions=1))
    ...     intake = Intake(feed, decode=json.loads, dlq_topic="dlq")
    ...     intake.arrived(0.0, [Raw(n) for n in range(20)])  # decoded by the next loop turns, in order
    ...     while intake.pending:
    ...         await asyncio.sleep(0)
    ...     return feed.ring(0).head, len(feed.cache)
    >>> asyncio.run(main())
    (19, 1)
    """

    def __init__(
        self,
        feed: PredictionFeed,
        decode: Callable[[bytes], dict[str, Any]],
        dlq_topic: str,
        slice_s: float = SLICE_S,
        max_pending: int = MAX_PENDING,
        clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.feed = feed
        self.decode = decode
        self.dlq_topic = dlq_topic
        self.slice_s = slice_s
        self.max_pending = max_pending
        self.clock = clock
        self._pending: deque[tuple[float, Message]] = deque()
        self._draining = False
        self.room = threading.Event()
        """Set while the consumer thread may fetch more (fewer than MAX_PENDING records wait)."""
        self.room.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def arrived(self, received_at: float, messages: Sequence[Message]) -> None:
        """A fetched batch (on the loop): queued, and decoded over the next loop turns."""
        self._pending.extend((received_at, message) for message in messages)
        if len(self._pending) >= self.max_pending:
            self.room.clear()
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        pending, dlq, feed = self._pending, self.dlq_topic, self.feed
        batch: list[Published] = []
        dead_letters = 0
        until = self.clock() + self.slice_s
        done = 0
        while pending and (done < MIN_SLICE or self.clock() < until):
            done += 1
            received_at, message = pending.popleft()
            error = message.error()
            partition, offset = message.partition() or 0, message.offset() or 0
            if message.topic() == dlq:
                dead_letters += error is None
                continue
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    # The end is reached only after what came before it: hand that over first.
                    feed.ingest(batch)
                    batch = []
                    feed.reached_end(partition, offset)
                else:
                    log.warning("gateway_kafka_error", error=str(error))
                continue
            try:
                record = self.decode(message.value() or b"")
            except Rejected as rejected:
                feed.metrics.undecodable.inc()
                log.warning("gateway_undecodable", partition=partition, offset=offset, error=str(rejected))
                continue
            batch.append(Published.of_record(partition, offset, record, received_at))
        feed.ingest(batch)
        if dead_letters:
            feed.pipeline.dead_letters += dead_letters
            feed.metrics.dead_letters.inc(dead_letters)
        if len(pending) < self.max_pending:
            self.room.set()
        if pending:
            asyncio.get_running_loop().call_soon(self._drain)  # the rest after whatever else is ready
        else:
            self._draining = False
