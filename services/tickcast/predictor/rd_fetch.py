"""The fetch of batch topics through a librdkafka consumer, inside a Faust worker (issue 18).

aiokafka's record path costs the worker ~2 us a tick on Faust's consumer thread, all of it holding the
GIL, plus a thread hand-off per poll; confluent-kafka's ``consume`` costs ~0.45 us a record on the calling
thread. So only the *fetch* of the topics registered with ``TunedApp.drain_in_batches`` moves here: Faust and
aiokafka keep the group membership, the assignment, rebalances, commits and every other topic.

The librdkafka consumer never joins the group (manual ``assign``, no ``subscribe``) and never commits. It
follows aiokafka: on each assignment, seek or rewind, :class:`RdFetch` reads where aiokafka stands for the
batch topic's partitions (their committed offsets, or wherever Faust sought them) and assigns exactly those
partitions there; aiokafka keeps them paused so that only one client fetches them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, cast

import structlog
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from faust.types import TP

from tickcast.common.kafka import client_config, new_consumer
from tickcast.common.security import KafkaClientSettings
from tickcast.predictor.settings import PredictorSettings

log = structlog.get_logger("tickcast.predictor")

#: The same kind of broker error is logged once per this many seconds (the others are counted).
ERROR_REPEAT_S = 60.0

#: What librdkafka prefetches ahead of the batch loop, across the worker's partitions. Its default (64 MB, and
#: 100,000 messages a partition) would hold a whole backlog in memory; aiokafka held ~1 MB a partition. 8 MB is
#: ~100,000 ticks, seconds of work at the drain rate, so the loop never waits for a fetch while ticks are queued.
PREFETCH = {"queued.max.messages.kbytes": 8192, "queued.min.messages": 20_000}


class FetchedRecord(Protocol):
    """What a :data:`BatchHandler` may read of a record: aiokafka's own decoded record, not a ``ConsumerRecord``."""

    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


def fresh_records(records: Sequence[FetchedRecord], read_offset: int | None) -> Sequence[FetchedRecord]:
    """The records at or after ``read_offset`` (Faust's rule for records fetched before a seek).

    >>> from collections import namedtuple
    >>> R = namedtuple("R", "offset")
    >>> [r.offset for r in fresh_records([R(3), R(4), R(5)], 4)], len(fresh_records([R(3)], None))
    ([4, 5], 1)
    """
    if read_offset is None or not records or records[0].offset >= read_offset:
        return records
    return [record for record in records if record.offset >= read_offset]


ErrorReport = Callable[[KafkaError], None]
"""Where the error events among consumed messages go: :meth:`RdFetch.report`, which logs each kind once a minute."""


class RdRecord:
    """A fetched record as the batch handler reads it (``FetchedRecord``), taken from a librdkafka message.

    >>> class M:
    ...     def offset(self): return 7
    ...     def timestamp(self): return (1, 1700000000000)
    ...     def key(self): return b"BTC"
    ...     def value(self): return b"x"
    >>> r = RdRecord(M())
    >>> r.offset, r.timestamp, r.key, r.value
    (7, 1700000000000, b'BTC', b'x')
    """

    __slots__ = ("key", "offset", "timestamp", "value")

    def __init__(self, message: Message) -> None:
        # Only error events lack an offset, a topic or a partition, and by_partition skips those.
        self.offset: int = cast(int, message.offset())
        self.timestamp: int = message.timestamp()[1]
        self.key: bytes | None = message.key()
        self.value: bytes | None = message.value()


class RdFetch:
    """A librdkafka consumer assigned the batch topics' partitions where aiokafka stands for them."""

    def __init__(
        self, kafka: KafkaClientSettings, group_id: str, max_records: int, wait_s: float, **overrides: Any
    ) -> None:
        self.kafka, self.group_id = kafka, group_id
        self.overrides = {
            **PREFETCH,
            **overrides,
            # Never in the group, never committing: aiokafka (through Faust) owns both.
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # An assigned offset out of range (retention deleted the committed one): restart where aiokafka did
            # (Faust's consumer_auto_offset_reset), not at librdkafka's default, the end, past every tick left.
            "auto.offset.reset": "earliest",
            "error_cb": self._on_error,
        }
        self.max_records = max_records
        self.wait_s = wait_s
        self._reported: dict[str, float] = {}
        self._unreported: dict[str, int] = {}
        self.consumer: Consumer | None = None
        # One thread of its own for the blocking wait, so that close() can wait for the poll in flight.
        self._waiter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tickcast-rd-fetch")
        self.assigned: frozenset[TP] = frozenset()
        self.assigned_at = 0.0
        """``time.monotonic()`` of the latest :meth:`assign`."""
        self.paused: set[TP] = set()
        self.key: object = None
        self.dirty = True
        self.closed = False

    def _on_error(self, error: KafkaError) -> None:
        # Called from consume() or poll(), and with the error events of a poll's messages (by_partition);
        # librdkafka reconnects and retries by itself, so this only reports.
        # A broker that stays down is reported again on every reconnect attempt: once a minute per kind is enough.
        code, now = error.name(), time.monotonic()
        if now - self._reported.get(code, -ERROR_REPEAT_S) < ERROR_REPEAT_S and not error.fatal():
            self._unreported[code] = self._unreported.get(code, 0) + 1
            return
        self._reported[code] = now
        repeats = self._unreported.pop(code, 0)
        log.error("librdkafka_fetch_error", error=error.str(), code=code, fatal=error.fatal(), repeats_since=repeats)

    def report(self, error: KafkaError) -> None:
        """Log a broker error, the same kind at most once per ``ERROR_REPEAT_S`` (the others are counted)."""
        self._on_error(error)

    @property
    def config(self) -> dict[str, Any]:
        """The librdkafka configuration :meth:`ensure` builds its consumer with."""
        return client_config(self.kafka, **{"group.id": self.group_id, **self.overrides})

    def ensure(self) -> Consumer:
        if self.consumer is None:
            self.consumer = new_consumer(self.kafka, self.group_id, **self.overrides)
        return self.consumer

    def assign(self, positions: Mapping[TP, int]) -> None:
        """Fetch exactly ``positions``' partitions, from those offsets (drops whatever was prefetched)."""
        if self.closed:
            return  # the fetch loop's last round after on_stop: a new consumer would never be closed
        consumer = self.ensure()
        consumer.assign([TopicPartition(tp.topic, tp.partition, offset) for tp, offset in sorted(positions.items())])
        self.assigned = frozenset(positions)
        self.assigned_at = time.monotonic()
        self.paused = set()

    def pause_only(self, tps: Iterable[TP]) -> None:
        """Keep ``tps`` (of the assigned ones) paused and every other assigned partition fetching."""
        wanted = set(tps) & self.assigned
        if wanted == self.paused or self.consumer is None:
            return
        pause, resume = wanted - self.paused, self.paused - wanted
        if pause:
            self.consumer.pause([TopicPartition(tp.topic, tp.partition) for tp in pause])
        if resume:
            self.consumer.resume([TopicPartition(tp.topic, tp.partition) for tp in resume])
        self.paused = wanted

    def seek_back(self, tp: TP, offset: int) -> None:
        """Fetch ``tp`` again from ``offset`` (records consumed but not delivered)."""
        if self.consumer is not None:
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))

    async def poll(self) -> list[Message]:
        """What librdkafka has queued; if nothing, wait in the default executor for up to ``wait_s``."""
        if self.closed:
            return []
        consumer = self.ensure()
        if not self.assigned:
            await asyncio.sleep(self.wait_s)
            return []
        messages = consumer.consume(self.max_records, 0)
        if messages:
            return messages
        # consume() with a timeout waits for a full batch: block for the first message only, off the loop.
        first = await asyncio.wrap_future(self._waiter.submit(consumer.poll, self.wait_s))
        if first is None:
            return []
        return [first, *consumer.consume(self.max_records - 1, 0)] if self.max_records > 1 else [first]

    def highwater(self, tp: TP) -> int | None:
        if self.consumer is None:
            return None
        _, high = self.consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), cached=True)
        return high if high >= 0 else None

    def close(self) -> None:
        """Wait for the poll in flight (at most ``wait_s``), then leave: nothing to commit, no group to leave."""
        self.closed = True
        self._waiter.shutdown(wait=True)
        if self.consumer is not None:
            consumer, self.consumer = self.consumer, None
            consumer.close()


def by_partition(messages: list[Message], report: ErrorReport) -> dict[TP, list[RdRecord]]:
    """Group consumed messages per partition, in order; error events go to ``report`` and are skipped."""
    batches: dict[TP, list[RdRecord]] = {}
    # librdkafka hands out a fetched partition's messages in runs: look the partition up once a run.
    run_topic, run_partition, batch = None, None, None
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                report(error)  # rate-limited: a lasting partition error comes with every poll
            continue
        partition, topic = message.partition(), message.topic()
        if partition != run_partition or topic != run_topic or batch is None:
            run_topic, run_partition = topic, partition
            batch = batches.setdefault(TP(cast(str, topic), cast(int, partition)), [])
        batch.append(RdRecord(message))
    return batches


def ticks_fetch(settings: PredictorSettings) -> RdFetch | None:
    """The worker's librdkafka fetch of its ticks (None when ``TICKCAST_LIBRDKAFKA_FETCH`` is off).

    Same TLS and SASL as every librdkafka client of the worker, and the worker's fetch wait.
    """
    if not settings.librdkafka_fetch:
        return None
    return RdFetch(
        settings, settings.group_id, settings.max_poll_records, wait_s=0.1,
        **{"fetch.wait.max.ms": settings.fetch_max_wait_ms},
    )  # fmt: skip
