"""The one place tickcast reaches into Faust: a configurable fetch wait, batch delivery and explicit commits.

Faust stays the worker's engine: group membership, assignment and rebalance
signals, seeking to committed offsets, flow control, timers, web views. Two of its
internals stand in the way of a fast worker, and :class:`TunedApp` replaces only those:

* **Fetch wait.** Faust 0.15 hard-codes aiokafka's ``fetch_max_wait_ms=1500``.
  Apache Kafka answers a fetch as soon as ``fetch.min.bytes`` is met, so there it
  mostly costs idle partitions; brokers that hold a fetch for the full wait (Tansu
  does) add ~half of it to every hop's latency. ``fetch_max_wait_ms`` sets it.
* **Per-event delivery.** Faust hands every record to its agents one at a time:
  a ``Message``, an ``Event``, a trip through the conductor, a queue and the
  stream iterator, and an ack that the commit loop later sorts back into
  offsets. Profiled, that machinery cost ~4x the tick's own work, and batching
  the agent with ``stream.take()`` did not help because the per-event path runs
  before ``take`` sees anything. For a topic registered with
  :meth:`TunedApp.drain_in_batches`, each fetched per-partition batch of records
  goes straight to one coroutine instead. That coroutine owns the offsets of the
  topic and commits them with :meth:`TunedApp.commit_offsets` (Faust's own commit
  path: assignment check, committed-offset bookkeeping, monitor).

* **Record objects.** aiokafka wraps every decoded record in an 11-field ``ConsumerRecord`` dataclass, in
  Faust's consumer thread, which shares the GIL with the event loop: ~20% of a draining worker's CPU. Records
  of batch topics reach their handler as aiokafka decoded them (:class:`FetchedRecord`). Only that one
  construction step (``PartitionRecords._consumer_record``) is replaced, and only for the consumer a
  :class:`TunedApp` builds (it is marked by its key deserializer); CRC checks, control batches, aborted
  transactions and offset skipping stay aiokafka's (``tests/unit/predictor/test_fetched_records.py``).
* **The fetch itself** (``TICKCAST_LIBRDKAFKA_FETCH``, issue 18). Even without ``ConsumerRecord``, aiokafka's
  record path costs ~2 us a tick on Faust's consumer thread, holding the GIL, plus a thread hand-off per poll;
  confluent-kafka's ``consume`` costs ~0.45. With :attr:`TunedApp.rd_fetch` set, the batch topics are fetched
  by a librdkafka consumer that follows aiokafka's assignment and seeks and never joins the group, while
  aiokafka keeps their partitions paused (:mod:`tickcast.predictor.faust_rd`, :mod:`tickcast.predictor.rd_fetch`).

Where: Faust's own fetch loop (``Consumer._drain_messages`` -> ``getmany``) stays
in charge; :class:`_TunedConsumer` overrides only ``_wait_next_records``, the call
that returns each fetch. It hands the records of batch topics to their handlers and
returns the rest to Faust, so other topics go through Faust's per-event path
unchanged (gap tracking, ``broker_commit_every``, sensors). While a rebalance has
stopped the flow it hands everything back, and Faust drops it and seeks back to the
committed offsets, as it does for any topic.

**Rewinds.** :meth:`TunedApp.rewind` re-reads partitions from their committed offsets
(after an output of their ticks was refused, see ``state_sync``). The seek happens in the
fetch loop itself, before its next fetch, so no batch of those partitions is being
delivered meanwhile; aiokafka drops what it prefetched before a seek. A rewind requested
before a rebalance is dropped: the rebalance seeks every partition to its committed offset anyway.

What Faust does per event and the batch path does per batch: drop records older
than the read offset (after a seek), stop at a generation change or when flow is
stopped (a rebalance), and tell the monitor the partition is alive (so Faust's
livelock detector does not report a busy partition as idle). Faust's per-event
sensors do not see batch-delivered records; tickcast counts them in its own metrics.

Checked against faust-streaming 0.15 and aiokafka 0.14 (both pinned in
``pyproject.toml``). ``tests/unit/predictor/test_faust_tuning.py`` checks that every
internal listed in :data:`REACHED_INTO` still exists and is still used the way this
module relies on, and drives the rebalance branches with a real consumer whose
broker I/O is faked; every integration test runs it end to end.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import aiokafka
import faust
from aiokafka.consumer import fetcher as aiokafka_fetcher
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TransportT

from tickcast.predictor.faust_rd import RdFollowingConsumer
from tickcast.predictor.own_share import OwnShareSplit
from tickcast.predictor.rd_fetch import FetchedRecord, RdFetch, fresh_records

BatchHandler = Callable[[TP, Sequence[FetchedRecord]], Awaitable[None]]
"""Receives the records of one partition in offset order; a later call never repeats an earlier one's records
(unless the partition was rewound between them)."""

RewindHandler = Callable[[set[TP]], Awaitable[None]]
"""Called with the partitions just rewound, before any of their records is delivered again."""

RecordMap = Mapping[TP, list[Any]]

FetchDone = Callable[[], None]
"""Called once per fetch, after the last of its batches was handed over: work that none of its ticks waits for."""

#: The internals of Faust and aiokafka this module overrides, calls or reads, by where they live.
#: Not public API: a unit test fails naming any that an upgrade removed.
REACHED_INTO: Mapping[str, tuple[str, ...]] = {
    "aiokafka.AIOKafkaConsumer": (
        "_fetch_max_wait_ms",
        "_key_deserializer",
        "_coordinator",
        "committed",
        "pause",
        "position",
    ),
    "aiokafka PartitionRecords": ("_consumer_record", "_key_deserializer"),
    "faust AIOKafkaConsumerThread": (
        "_create_worker_consumer",
        "_consumer",
        "call_thread",
        "_ensure_consumer",
        "on_partitions_assigned",
    ),
    "faust aiokafka Consumer": (
        "_thread",
        "seek_wait",
        "earliest_offsets",
        "assignment",
        "_new_consumer_thread",
        "_wait_next_records",
        "_drain_messages",
        "_read_offset",
        "_buffered_partitions",
        "_commit_offsets",
        "_thread",
        "flow_active",
        "highwater",
        "_get_active_partitions",
        "can_resume_flow",
        "_getmany",
        "seek_to_committed",
        "_seek",
        "on_stop",
        "verify_event_path",
    ),
    "faust aiokafka Transport": ("Consumer",),
    "faust App": ("_new_transport", "consumer_generation_id", "monitor"),
    "faust Monitor": ("track_tp_end_offset", "stream_inbound_time"),
}


class _BatchTopics:
    """Stands in for the worker consumer's key deserializer, so that its fetcher knows which topics are batched.

    aiokafka hands a consumer's key deserializer to every ``PartitionRecords`` it builds, so this is how the
    record override tells the worker's consumer from any other. As a deserializer it changes nothing.
    """

    def __init__(self, topics: Mapping[str, object]) -> None:
        self.topics = topics  # the app's own registry: a topic registered later is batched too

    def __call__(self, key: bytes | None) -> bytes | None:
        return key


def _consumer_record(self: Any, tp: TP, record: Any) -> Any:
    # A batch topic's record goes to its handler as aiokafka decoded it (offset, timestamp, key, value, headers):
    # the 11-field ConsumerRecord aiokafka builds around it was ~20% of a draining worker's CPU.
    # CRC checks, control batches, aborted transactions and offset skipping happen before this call, unchanged.
    batch_topics = self._key_deserializer
    if type(batch_topics) is _BatchTopics and tp.topic in batch_topics.topics:
        return record
    return _aiokafka_consumer_record(self, tp, record)


_aiokafka_consumer_record = aiokafka_fetcher.PartitionRecords._consumer_record
aiokafka_fetcher.PartitionRecords._consumer_record = _consumer_record


class _TunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        app = cast(TunedApp, self.app)
        # aiokafka reads these attributes when it builds its fetcher in start(), after construction.
        consumer._fetch_max_wait_ms = app.fetch_max_wait_ms
        if consumer._key_deserializer is None:  # Faust passes none
            consumer._key_deserializer = _BatchTopics(app.batch_handlers)
        return consumer

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        app = cast(TunedApp, self.app)
        if app.rd_fetch is not None:
            # Before Faust hears of them (on this, aiokafka's, thread): else aiokafka fetches the batch topics'
            # partitions too (whole partitions, on Tansu) until the fetch loop gets round to pausing them.
            batch = [
                aiokafka.TopicPartition(tp.topic, tp.partition) for tp in assigned if tp.topic in app.batch_handlers
            ]
            self._ensure_consumer().pause(*batch)
        await super().on_partitions_assigned(assigned, generation_id)


class _TunedConsumer(RdFollowingConsumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _wait_next_records(self, timeout: float) -> tuple[RecordMap | None, set[TP] | None]:
        app = cast(TunedApp, self.app)
        if app.rd_fetch is not None and app.batch_handlers:
            return await self._wait_rd(app, app.rd_fetch)
        if app.pending_rewinds and self.flow_active:
            await self._rewind(app)
        records, active = await super()._wait_next_records(timeout)
        stamp = app.own_share.fetched()
        app.fetched_at = stamp.at
        handlers = app.batch_handlers
        if not records or not handlers or not self.flow_active:
            # Stopped flow: Faust's getmany drops what was fetched and seeks back to the committed offsets.
            return records, active
        batched = {tp: batch for tp, batch in records.items() if tp.topic in handlers}
        if not batched:
            return records, active
        await self._deliver(batched, active, handlers)
        # The fetch's last outcome is handed over (or a rebalance stopped its delivery): measured as one batch,
        # like the plain loop's poll, and only then the bookkeeping that no tick of it had to wait for.
        app.own_share.batch_done(stamp)
        for done in app.after_fetch:
            done()
        return {tp: batch for tp, batch in records.items() if tp.topic not in handlers}, active

    async def _deliver(self, records: RecordMap, active: set[TP] | None, handlers: Mapping[str, BatchHandler]) -> None:
        app = self.app
        generation = app.consumer_generation_id
        for tp, batch in records.items():
            if app.consumer_generation_id != generation or not self.flow_active:
                return  # a rebalance started: the next owner (maybe us) reads these again
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            fresh = fresh_records(batch, self._read_offset[tp])
            if not fresh:
                continue
            app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            app.monitor.stream_inbound_time[tp] = time.monotonic()
            await handlers[tp.topic](tp, fresh)
            if app.consumer_generation_id != generation:
                return  # the handler outlived a rebalance: Faust's seek set the read offset, don't move it past
            self._read_offset[tp] = fresh[-1].offset + 1

    async def _rewind(self, app: TunedApp) -> None:
        requested, app.pending_rewinds = app.pending_rewinds, {}
        generation, assigned = app.consumer_generation_id, self.assignment()
        # Requested before a rebalance: that rebalance already sought every partition to its committed offset.
        tps = {tp for tp, asked_in in requested.items() if asked_in == generation and tp in assigned}
        if not tps:
            return
        thread = cast(faust_aiokafka.AIOKafkaConsumerThread, self._thread)
        aiokafka_consumer = thread._ensure_consumer()
        committed: dict[TP, int | None] = {
            tp: await thread.call_thread(aiokafka_consumer.committed, tp) for tp in sorted(tps)
        }
        never = [tp for tp, offset in committed.items() if offset is None]
        # Nothing committed yet: start where a new member of the group would (auto.offset.reset=earliest).
        earliest = await self.earliest_offsets(*never) if never else {}
        offsets = {tp: offset if offset is not None else earliest[tp] for tp, offset in committed.items()}
        await self.seek_wait(offsets)  # also resets Faust's read offsets, so the older records are read again
        if app.on_rewound is not None:
            await app.on_rewound(tps)


class _TunedTransport(faust_aiokafka.Transport):
    Consumer = _TunedConsumer


class TunedApp(faust.App):
    """A ``faust.App`` with a configurable fetch wait and topics delivered to a coroutine in batches.

    >>> app = TunedApp("doc-app", broker="kafka://localhost:9092", fetch_max_wait_ms=10)
    >>> async def handle(tp, records): ...
    >>> topic = app.drain_in_batches("doc-ticks", handle)
    >>> type(app.transport).__name__, app.fetch_max_wait_ms, sorted(app.batch_handlers)
    ('_TunedTransport', 10, ['doc-ticks'])
    """

    def __init__(
        self, *args: Any, fetch_max_wait_ms: int = 1500, rd_fetch: RdFetch | None = None, **kwargs: Any
    ) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.rd_fetch = rd_fetch
        self.batch_handlers: dict[str, BatchHandler] = {}
        self.pending_rewinds: dict[TP, int] = {}
        self.fetched_at = 0.0
        """``time.perf_counter()`` when the fetch being handled returned: the start of the worker's own latency."""
        # Made here, on the thread that runs the event loop and so handles every batch (see own_share).
        self.own_share = OwnShareSplit()
        self.on_rewound: RewindHandler | None = None
        self.after_fetch: list[FetchDone] = []
        """Run after each fetch of batch topics, once all its batches were delivered (see :data:`FetchDone`)."""
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> TransportT:
        return _TunedTransport(self.conf.broker_consumer, self)

    def drain_in_batches(self, topic: str | faust.TopicT, handler: BatchHandler) -> faust.TopicT:
        """Subscribe the worker's consumer to ``topic`` and hand its records to ``handler`` a batch at a time.

        The handler owns the topic's offsets: nothing is committed for it until it calls :meth:`commit_offsets`.
        """
        channel = topic if isinstance(topic, faust.TopicT) else self.topic(topic, key_type=bytes, value_type=bytes)
        for name in channel.topics:
            self.batch_handlers[name] = handler
        # Registering the channel with the conductor is what puts the topic into the group subscription.
        self.topics.add(channel)
        return channel

    def group_generation(self) -> int:
        """The consumer-group generation this worker is a member of right now; -1 when it is not a member.

        aiokafka resets it to -1 as soon as the coordinator says the member is unknown or its
        generation is stale (a worker that stalled past its session timeout), before it calls the
        revocation handler: that handler must then not write state the new owner may have moved past.

        >>> TunedApp("doc-generation", broker="kafka://127.0.0.1:1").group_generation()  # not started
        -1
        """
        consumer = getattr(self.consumer, "_thread", None)
        kafka_consumer = getattr(consumer, "_consumer", None)
        coordinator = getattr(kafka_consumer, "_coordinator", None)
        generation = getattr(coordinator, "generation", -1)
        return generation if isinstance(generation, int) else -1

    async def commit_offsets(self, offsets: Mapping[TP, int]) -> bool:
        """Commit "next offset to read" per partition through Faust's commit path; False if nothing was committed.

        Partitions this worker no longer owns are skipped (their next owner re-reads from the last commit).
        """
        return bool(await self.consumer._commit_offsets(offsets))  # type: ignore[attr-defined]

    def rewind(self, tps: Iterable[TP]) -> None:
        """Have the fetch loop seek ``tps`` back to their committed offsets before its next fetch.

        Their records from there on are delivered again, after :attr:`on_rewound` (if set) has been awaited.
        """
        generation = self.consumer_generation_id
        for tp in tps:
            self.pending_rewinds[tp] = generation
