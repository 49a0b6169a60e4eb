"""The Faust hooks (fetch wait, batch delivery): they must survive Faust upgrades, and behave through rebalances.

The rebalance tests drive Faust's real ``getmany`` on a real consumer of a :class:`TunedApp`; only the broker
I/O under it (fetching, active partitions, committed offsets, high watermarks) and the monitor are faked.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

import aiokafka
import faust
import pytest
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from tickcast.predictor import faust_tuning
from tickcast.predictor.faust_tuning import REACHED_INTO, TunedApp, fresh_records
from tickcast.predictor.settings import PredictorSettings
from tickcast.testing.worker_app import built_worker_app

TICKS = TP("ticks", 0)
TICKS_1 = TP("ticks", 1)
OTHER = TP("other", 0)


def record(tp: TP, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


def records(tp: TP, *offsets: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [record(tp, offset) for offset in offsets]


@dataclass
class Rig:
    """A TunedApp's consumer with "ticks" delivered in batches; fetches return what the test queues."""

    app: TunedApp
    consumer: Any
    fetches: list[tuple[Mapping[TP, list[Any]], Callable[[], None]]] = field(default_factory=list)
    delivered: list[tuple[TP, list[int]]] = field(default_factory=list)
    on_batch: Callable[[TP], None] = lambda tp: None
    seeks: int = 0
    committed: dict[TP, int] = field(default_factory=dict)
    end_offsets: dict[TP, int] = field(default_factory=dict)

    def fetch(self, batch: Mapping[TP, list[Any]], during: Callable[[], None] = lambda: None) -> None:
        """Queue a fetch result; ``during`` runs while it is being fetched (e.g. a rebalance starts)."""
        self.fetches.append((batch, during))

    async def next_fetch(self) -> list[tuple[TP, int]]:
        """One round of Faust's own per-event loop: what it would hand to agents, as (tp, offset)."""
        return [(tp, message.offset) async for tp, message in self.consumer.getmany(timeout=0.0)]

    def run(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        return asyncio.run(make())


def rig(active: Sequence[TP] = (TICKS, TICKS_1, OTHER), batch_topics: Sequence[str] = ("ticks",)) -> Rig:
    app = TunedApp(f"test-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1")
    consumer: Any = app.consumer  # its broker I/O is replaced below
    r = Rig(app, consumer)

    async def handle(tp: TP, batch: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        r.delivered.append((tp, [rec.offset for rec in batch]))
        r.on_batch(tp)

    for topic in batch_topics:
        app.drain_in_batches(topic, handle)

    async def getmany(active_partitions: set[TP], timeout: float) -> Mapping[TP, list[Any]]:
        batch, during = r.fetches.pop(0)
        during()
        return {tp: recs for tp, recs in batch.items() if tp in active_partitions}

    async def seek_to_committed() -> Mapping[TP, int]:
        r.seeks += 1
        return dict(r.committed)

    def track_tp_end_offset(tp: TP, offset: int) -> None:
        r.end_offsets[tp] = offset

    consumer._getmany = getmany
    consumer._get_active_partitions = lambda: set(active)
    consumer.seek_to_committed = seek_to_committed
    consumer.highwater = lambda tp: 100
    app.monitor = SimpleNamespace(track_tp_end_offset=track_tp_end_offset, stream_inbound_time={})
    return r


def test_batch_topics_go_to_their_handler_and_other_topics_through_fausts_per_event_path() -> None:
    r = rig()
    r.fetch({TICKS: records(TICKS, 0, 1, 2), OTHER: records(OTHER, 7, 8), TICKS_1: records(TICKS_1, 4)})
    per_event = r.run(r.next_fetch)
    assert sorted(r.delivered) == [(TICKS, [0, 1, 2]), (TICKS_1, [4])]
    assert per_event == [(OTHER, 7), (OTHER, 8)], "records of other topics must reach Faust's per-event loop"
    assert r.consumer._read_offset[TICKS] == 3 and r.consumer._read_offset[TICKS_1] == 5
    assert r.end_offsets[TICKS] == r.end_offsets[TICKS_1] == 100, "the monitor must hear that busy partitions live"
    # Faust's own fetch loop (gap tracking, broker_commit_every) stays: only the fetch call is ours.
    assert type(r.consumer)._drain_messages is FaustConsumer._drain_messages


def test_without_batch_topics_every_record_goes_through_faust() -> None:
    r = rig(batch_topics=())
    r.fetch({TICKS: records(TICKS, 0, 1), OTHER: records(OTHER, 3)})
    assert sorted(r.run(r.next_fetch)) == [(OTHER, 3), (TICKS, 0), (TICKS, 1)]
    assert r.delivered == []


def test_a_generation_change_stops_delivery_of_the_fetched_rest() -> None:
    r = rig()
    r.on_batch = lambda tp: setattr(r.app, "consumer_generation_id", r.app.consumer_generation_id + 1)
    r.fetch({TICKS: records(TICKS, 0, 1), TICKS_1: records(TICKS_1, 0, 1)})
    r.run(r.next_fetch)
    assert len(r.delivered) == 1, "a batch fetched in an older generation was delivered"
    undelivered = TICKS_1 if r.delivered[0][0] == TICKS else TICKS
    assert r.consumer._read_offset[undelivered] is None, "the next owner must read it again"


def test_flow_stopped_by_a_handler_stops_delivery_and_faust_seeks_back() -> None:
    r = rig()
    r.committed = {TICKS: 2, TICKS_1: 0, OTHER: 7}
    r.on_batch = lambda tp: r.consumer.stop_flow()
    r.fetch({TICKS: records(TICKS, 2, 3), TICKS_1: records(TICKS_1, 0, 1), OTHER: records(OTHER, 7)})
    per_event = r.run(r.next_fetch)
    assert len(r.delivered) == 1, "a batch was delivered after a rebalance stopped the flow"
    assert per_event == [] and r.seeks == 1, "with the flow stopped, Faust drops the rest and seeks back"


def test_a_fetch_that_returns_while_flow_is_stopped_is_dropped_and_older_records_after_the_seek_too() -> None:
    r = rig()
    r.committed = {TICKS: 5, OTHER: 1}
    # A rebalance stops the flow while the fetch is in flight: nothing of it may be handled.
    r.fetch({TICKS: records(TICKS, 3, 4, 5, 6), OTHER: records(OTHER, 0, 1)}, during=r.consumer.stop_flow)
    # After the rebalance, a fetch issued before the seek still returns records from before the committed offset.
    r.fetch({TICKS: records(TICKS, 3, 4, 5, 6, 7, 8), OTHER: records(OTHER, 0, 1, 2)})
    r.fetch({TICKS: records(TICKS, 3, 4)})

    async def scenario() -> tuple[list[tuple[TP, int]], list[tuple[TP, int]], list[tuple[TP, int]]]:
        stopped = await r.next_fetch()
        r.consumer.resume_flow()
        return stopped, await r.next_fetch(), await r.next_fetch()

    while_stopped, after_seek, stale = r.run(scenario)
    assert while_stopped == [] and r.seeks == 1
    assert r.delivered == [(TICKS, [5, 6, 7, 8])], "records before the committed offset were handled again"
    assert {tp for tp, _ in after_seek} == {OTHER}, "ticks must never reach the per-event path"
    assert stale == [] and r.consumer._read_offset[TICKS] == 9


def test_after_fetch_runs_once_per_fetch_after_its_last_batch_was_handed_over() -> None:
    r = rig()
    fetch_ends: list[int] = []
    r.app.after_fetch.append(lambda: fetch_ends.append(len(r.delivered)))
    r.fetch({TICKS: records(TICKS, 0, 1), TICKS_1: records(TICKS_1, 0), OTHER: records(OTHER, 3)})
    r.fetch({TICKS: records(TICKS, 2)})
    r.run(r.next_fetch)
    r.run(r.next_fetch)
    # Delivery reports and checkpoint scheduling run there: no tick of the fetch waits for them.
    assert fetch_ends == [2, 3], "after_fetch must run once per fetch, after every batch of it"
    split = r.app.own_share.to_stats()
    assert split["wall"][-1][1] == 2, "the own-share split is one observation per fetch, as in the plain loop"


def test_paused_partitions_are_not_delivered() -> None:
    r = rig(active=(TICKS,))
    r.fetch({TICKS: records(TICKS, 0), TICKS_1: records(TICKS_1, 0)})
    r.run(r.next_fetch)
    assert r.delivered == [(TICKS, [0])]


class FakeConsumerThread:
    """The consumer thread's calls into aiokafka, answered from ``committed`` (None: nothing committed yet)."""

    def __init__(self, committed: Mapping[TP, int | None]) -> None:
        self.committed = committed

    def _ensure_consumer(self) -> Any:
        async def committed(tp: TP) -> int | None:
            return self.committed[tp]

        return SimpleNamespace(committed=committed)

    async def call_thread(self, fun: Callable[..., Any], *args: Any) -> Any:
        return await fun(*args)


def rewind_rig(committed: Mapping[TP, int | None]) -> tuple[Rig, list[str]]:
    """A rig whose consumer can rewind: seeks and restores are logged, in order, with what delivery does."""
    r = rig()
    events: list[str] = []
    consumer = r.consumer
    consumer._thread = FakeConsumerThread(committed)
    consumer.assignment = lambda: {TICKS, TICKS_1}

    async def earliest_offsets(*tps: TP) -> Mapping[TP, int]:
        return {tp: 2 for tp in tps}

    async def seek_wait(offsets: Mapping[TP, int]) -> None:
        events.append(f"seek {sorted((tp.partition, offset) for tp, offset in offsets.items())}")
        consumer._read_offset.update(offsets)

    async def restore(tps: set[TP]) -> None:
        events.append(f"restore {sorted(tp.partition for tp in tps)}")

    consumer.earliest_offsets = earliest_offsets
    consumer.seek_wait = seek_wait
    r.app.on_rewound = restore
    r.on_batch = lambda tp: events.append(f"deliver {tp.partition}")
    return r, events


def test_a_rewind_seeks_back_to_the_committed_offset_and_restores_before_the_next_delivery() -> None:
    r, events = rewind_rig({TICKS: 5, TICKS_1: None})
    r.consumer._read_offset[TICKS] = 9
    r.app.rewind([TICKS, TICKS_1])
    r.fetch({TICKS: records(TICKS, 5, 6)})
    r.run(r.next_fetch)
    # Never committed: from where a new member of the group would start (the earliest offset).
    assert events == ["seek [(0, 5), (1, 2)]", "restore [0, 1]", "deliver 0"]
    assert r.delivered == [(TICKS, [5, 6])], "the records before the old read offset must be delivered again"
    assert r.app.pending_rewinds == {}


def test_a_rewind_asked_before_a_rebalance_is_dropped() -> None:
    r, events = rewind_rig({TICKS: 5, TICKS_1: 0})
    r.app.rewind([TICKS])
    r.app.consumer_generation_id += 1  # the rebalance sought every partition to its committed offset already
    r.fetch({TICKS: records(TICKS, 7)})
    r.run(r.next_fetch)
    assert events == ["deliver 0"] and r.app.pending_rewinds == {}


# ---------------------------------------------------------------- what an upgrade could break


def reached_objects() -> dict[str, tuple[type, object]]:
    """For each owner named in REACHED_INTO: the Faust/aiokafka class that must define the attribute, and a live
    instance (for attributes set in ``__init__``)."""
    app = TunedApp(f"hooks-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1")
    consumer: Any = app.consumer
    thread = consumer._thread

    async def build() -> aiokafka.AIOKafkaConsumer:
        # aiokafka consumers must be created inside a running loop, as the worker does.
        return thread._create_worker_consumer(app.transport)

    kafka_consumer = asyncio.run(build())
    records = PartitionRecords(TICKS, MemoryRecords(b""), [], 0, None, None, True, 0)
    return {
        "aiokafka.AIOKafkaConsumer": (aiokafka.AIOKafkaConsumer, kafka_consumer),
        "aiokafka PartitionRecords": (PartitionRecords, records),
        "faust AIOKafkaConsumerThread": (faust_aiokafka.AIOKafkaConsumerThread, thread),
        "faust aiokafka Consumer": (faust_aiokafka.Consumer, consumer),
        "faust aiokafka Transport": (faust_aiokafka.Transport, app.transport),
        "faust App": (faust.App, app),
        "faust Monitor": (type(app.monitor), app.monitor),
    }


def test_every_internal_faust_tuning_reaches_into_still_exists() -> None:
    owners = reached_objects()
    assert set(owners) == set(REACHED_INTO), "REACHED_INTO and this test list different owners"
    versions = f"faust-streaming {version('faust-streaming')}, aiokafka {version('aiokafka')}"
    missing = []
    for owner, names in REACHED_INTO.items():
        cls, instance = owners[owner]
        for name in names:
            # What tickcast overrides must exist on the original, not just on tickcast's subclass.
            overridden = any(name in vars(k) for k in type(instance).__mro__ if k.__module__.startswith("tickcast"))
            if not (hasattr(cls, name) or (not overridden and hasattr(instance, name))):
                missing.append(f"{owner}.{name}")
    assert not missing, f"{versions} no longer has {missing}: tickcast.predictor.faust_tuning relies on them"


@pytest.mark.parametrize(
    ("original", "parameters"),
    [
        (faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer, ["self", "transport"]),
        (FaustConsumer._wait_next_records, ["self", "timeout"]),
        (faust_aiokafka.Consumer._new_consumer_thread, ["self"]),
        (FaustConsumer._commit_offsets, ["self", "offsets", "start_new_transaction"]),
        (faust.App._new_transport, ["self"]),
        (faust_tuning._aiokafka_consumer_record, ["self", "tp", "record"]),
    ],
    ids=lambda hook: getattr(hook, "__qualname__", ""),
)
def test_the_overridden_and_called_hooks_keep_their_signatures(original: Any, parameters: list[str]) -> None:
    assert list(inspect.signature(original).parameters) == parameters, f"{original.__qualname__} changed"


def test_the_hooks_are_still_on_the_path_they_are_meant_to_change() -> None:
    # Each override only matters if the library still calls what it overrides, where it did.
    assert "self._fetch_max_wait_ms" in inspect.getsource(aiokafka.AIOKafkaConsumer.start), (
        "aiokafka's start() no longer builds its fetcher from _fetch_max_wait_ms: the fetch wait setting is ignored"
    )
    assert "self._wait_next_records(" in inspect.getsource(FaustConsumer.getmany), (
        "Faust's getmany no longer fetches through _wait_next_records: batch delivery is bypassed"
    )
    assert "getmany" in inspect.getsource(FaustConsumer._drain_messages), (
        "Faust's fetch loop no longer goes through getmany: batch delivery is bypassed"
    )
    assert "self._consumer_record(tp, record)" in inspect.getsource(PartitionRecords._unpack_records), (
        "aiokafka no longer builds each record through _consumer_record: batch topics get ConsumerRecords again"
    )
    assert "key_deserializer=self._key_deserializer" in inspect.getsource(aiokafka.AIOKafkaConsumer.start), (
        "aiokafka's start() no longer hands its key deserializer to the fetcher: batch topics are not recognised"
    )


def test_worker_consumer_uses_the_configured_fetch_wait() -> None:
    settings = PredictorSettings(bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=37, web_port=16066)
    with built_worker_app(settings) as (app, _):

        async def build() -> int:
            # aiokafka consumers must be created inside a running loop, as the worker does.
            thread = app.consumer._thread  # type: ignore[attr-defined]
            consumer = thread._create_worker_consumer(app.transport)
            return int(consumer._fetch_max_wait_ms)

        assert asyncio.run(build()) == 37


def test_default_fetch_wait_is_short() -> None:
    assert PredictorSettings(bootstrap_servers="127.0.0.1:1").fetch_max_wait_ms <= 100


def test_ticks_are_subscribed_and_delivered_in_batches_not_through_an_agent() -> None:
    settings = PredictorSettings(bootstrap_servers="127.0.0.1:1", ticks_topic="t-batch", web_port=16067)
    with built_worker_app(settings) as (app, _):
        assert list(app.batch_handlers) == ["t-batch"]  # type: ignore[attr-defined]
        # The conductor's topic set is the group subscription; an unsubscribed topic would never be fetched.
        assert any("t-batch" in channel.topics for channel in app.topics)
        assert not app.agents, "a per-event agent on ticks would compete with the batch path for the same records"
        # The fetch call must be ours: Faust's would hand the ticks to its per-event path, ignoring batch_handlers.
        consumer_class: Any = type(app.consumer)
        assert consumer_class._wait_next_records is not FaustConsumer._wait_next_records


@given(
    offsets=st.lists(st.integers(min_value=0, max_value=50), unique=True).map(sorted),
    read_offset=st.none() | st.integers(min_value=0, max_value=60),
)
def test_fresh_records_are_the_suffix_at_or_after_the_read_offset(offsets: list[int], read_offset: int | None) -> None:
    recs = [SimpleNamespace(offset=o) for o in offsets]
    kept = [r.offset for r in fresh_records(recs, read_offset)]  # type: ignore[arg-type]
    assert kept == [o for o in offsets if read_offset is None or o >= read_offset]


def test_the_worker_gives_freed_memory_back_on_a_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without it, glibc keeps what each restore and catch-up freed, and RSS creeps up with every rebalance."""
    intervals: dict[str, float] = {}

    def timer(self: TunedApp, interval: float, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            intervals[function.__name__] = interval
            return function

        return register

    monkeypatch.setattr(TunedApp, "timer", timer)
    with built_worker_app(
        PredictorSettings(bootstrap_servers="127.0.0.1:1", memory_release_every_s=7.0, web_port=16068)
    ):
        pass
    assert intervals.get("release_freed_memory") == 7.0, f"timers registered: {intervals}"
