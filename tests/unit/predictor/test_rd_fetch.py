"""The ticks fetched by a librdkafka consumer inside the Faust worker: it must follow Faust's group, never lead it.

These drive Faust's real ``getmany`` on a real consumer of a :class:`TunedApp`; the librdkafka consumer, the
aiokafka consumer under Faust (pause, position, seek) and the monitor are faked.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from confluent_kafka import KafkaError
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from tickcast.common.security import KafkaClientSettings
from tickcast.predictor.faust_rd import RdFollowingConsumer
from tickcast.predictor.faust_tuning import TunedApp
from tickcast.predictor.rd_fetch import RdFetch, by_partition, ticks_fetch
from tickcast.predictor.settings import PredictorSettings
from tickcast.testing.worker_app import built_worker_app

TICKS = TP("ticks", 0)
TICKS_1 = TP("ticks", 1)
OTHER = TP("other", 0)


@dataclass
class Msg:
    """A librdkafka message as confluent-kafka hands it out (methods, not attributes)."""

    tp: TP
    off: int
    err: KafkaError | None = None

    def topic(self) -> str:
        return self.tp.topic

    def partition(self) -> int:
        return self.tp.partition

    def offset(self) -> int:
        return self.off

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_000 + self.off)

    def key(self) -> bytes:
        return b"k%d" % self.off

    def value(self) -> bytes:
        return b"v%d" % self.off

    def error(self) -> KafkaError | None:
        return self.err


@dataclass
class FakeRd:
    """A librdkafka consumer: ``consume`` returns what the test queued for partitions assigned and not paused."""

    queued: list[Msg] = field(default_factory=list)
    assigned: dict[TP, int] = field(default_factory=dict)
    paused: set[TP] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    during: Callable[[], None] = lambda: None
    closed: bool = False

    def assign(self, parts: list[Any]) -> None:
        self.assigned = {TP(p.topic, p.partition): p.offset for p in parts}
        self.paused = set()
        self.calls.append(f"assign {sorted((tp.partition, o) for tp, o in self.assigned.items())}")

    def pause(self, parts: list[Any]) -> None:
        self.paused |= {TP(p.topic, p.partition) for p in parts}

    def resume(self, parts: list[Any]) -> None:
        self.paused -= {TP(p.topic, p.partition) for p in parts}

    def seek(self, part: Any) -> None:
        self.calls.append(f"seek {part.partition} {part.offset}")

    def consume(self, num: int, timeout: float) -> list[Msg]:
        taken = [m for m in self.queued if m.tp in self.assigned and m.tp not in self.paused][:num]
        self.queued = [m for m in self.queued if m not in taken]
        if taken:
            self.during()
        return taken

    def poll(self, timeout: float) -> Msg | None:
        got = self.consume(1, 0)
        return got[0] if got else None

    def get_watermark_offsets(self, part: Any, cached: bool = False) -> tuple[int, int]:
        return (0, 100)

    def close(self) -> None:
        self.closed = True


class FakeAiokafka:
    """Faust's aiokafka consumer, as far as following it goes: where it stands, and what is paused in it."""

    def __init__(self, positions: dict[TP, int]) -> None:
        self.positions = positions
        self.paused: set[TP] = set()

    def pause(self, *parts: Any) -> None:
        self.paused |= {TP(p.topic, p.partition) for p in parts}

    async def position(self, part: Any) -> int:
        return self.positions[TP(part.topic, part.partition)]


@dataclass
class RdRig:
    app: TunedApp
    consumer: Any
    rd: FakeRd
    aio: FakeAiokafka
    active: set[TP]
    delivered: list[tuple[TP, list[int]]] = field(default_factory=list)
    others: list[set[TP]] = field(default_factory=list)

    async def next_fetch(self) -> list[tuple[TP, int]]:
        return [(tp, message.offset) async for tp, message in self.consumer.getmany(timeout=0.0)]

    def fetch(self) -> list[tuple[TP, int]]:
        return asyncio.run(self.next_fetch())


def rd_rig(positions: Mapping[TP, int], active: Sequence[TP] = (TICKS, TICKS_1, OTHER)) -> RdRig:
    fetch = RdFetch(KafkaClientSettings(bootstrap_servers="127.0.0.1:1"), "g", max_records=1000, wait_s=0.0)
    rd = FakeRd()
    fetch.consumer = rd  # type: ignore[assignment]
    app = TunedApp(f"test-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1", rd_fetch=fetch)
    consumer: Any = app.consumer
    aio = FakeAiokafka(dict(positions))
    r = RdRig(app, consumer, rd, aio, set(active))

    async def handle(tp: TP, batch: Sequence[Any]) -> None:
        r.delivered.append((tp, [rec.offset for rec in batch]))

    app.drain_in_batches("ticks", handle)

    async def call_thread(fun: Callable[..., Any], *args: Any) -> Any:
        return await fun(*args)

    async def getmany(active_partitions: set[TP], timeout: float) -> Mapping[TP, list[Any]]:
        r.others.append(set(active_partitions))
        return {}

    consumer._thread = SimpleNamespace(_ensure_consumer=lambda: aio, call_thread=call_thread)
    consumer._getmany = getmany
    consumer._get_active_partitions = lambda: r.active
    consumer.assignment = lambda: set(positions) | {OTHER}
    app.monitor = SimpleNamespace(track_tp_end_offset=lambda tp, offset: None, stream_inbound_time={})
    return r


def test_each_assignment_assigns_the_batch_partitions_where_aiokafka_stands_and_pauses_them_there() -> None:
    r = rd_rig({TICKS: 5, TICKS_1: 0})
    r.rd.queued = [Msg(TICKS, 5), Msg(TICKS, 6), Msg(TICKS_1, 0)]
    per_event = r.fetch()
    assert r.rd.calls == ["assign [(0, 5), (1, 0)]"]
    assert r.aio.paused == {TICKS, TICKS_1}, "aiokafka would fetch the ticks too"
    assert sorted(r.delivered) == [(TICKS, [5, 6]), (TICKS_1, [0])]
    assert per_event == [] and r.others == [{OTHER}], "other topics go through aiokafka, without the ticks"
    assert r.consumer._read_offset[TICKS] == 7
    # The same assignment: no new assign (that would drop what librdkafka prefetched).
    r.fetch()
    assert r.rd.calls == ["assign [(0, 5), (1, 0)]"]
    # A rebalance: a new generation, maybe other partitions, each where Faust sought aiokafka.
    r.app.consumer_generation_id += 1
    r.aio.positions[TICKS] = 3
    r.fetch()
    assert r.rd.calls[-1] == "assign [(0, 3), (1, 0)]"


def test_aiokafka_pauses_the_batch_partitions_as_soon_as_they_are_assigned() -> None:
    r = rd_rig({TICKS: 0, TICKS_1: 0})
    thread = TunedApp(f"t-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1", rd_fetch=r.app.rd_fetch).consumer
    thread = thread._thread  # type: ignore[attr-defined]
    thread.app.drain_in_batches("ticks", r.app.batch_handlers["ticks"])
    heard: list[set[TP]] = []

    async def faust_hears(loop: Any, assigned: set[TP], generation: int) -> None:
        heard.append(set(r.aio.paused))

    thread._ensure_consumer = lambda: r.aio
    thread.consumer.threadsafe_partitions_assigned = faust_hears
    asyncio.run(thread.on_partitions_assigned({TICKS, TICKS_1, OTHER}, 3))
    assert heard == [{TICKS, TICKS_1}], "aiokafka fetches the ticks until the fetch loop pauses them"


def test_records_carry_what_the_handler_reads() -> None:
    r = rd_rig({TICKS: 0})
    seen: list[tuple[Any, ...]] = []

    async def handle(tp: TP, batch: Sequence[Any]) -> None:
        seen.extend((tp, rec.key, rec.value, rec.offset, rec.timestamp) for rec in batch)

    r.app.batch_handlers["ticks"] = handle
    r.rd.queued = [Msg(TICKS, 0), Msg(TICKS, 1)]
    r.fetch()
    assert seen == [(TICKS, b"k0", b"v0", 0, 1_000), (TICKS, b"k1", b"v1", 1, 1_001)]


def test_faust_pausing_a_partition_pauses_it_in_librdkafka_and_resuming_resumes_it() -> None:
    r = rd_rig({TICKS: 0, TICKS_1: 0})
    r.active = {TICKS, OTHER}
    r.rd.queued = [Msg(TICKS, 0), Msg(TICKS_1, 0)]
    r.fetch()
    assert r.delivered == [(TICKS, [0])] and r.rd.paused == {TICKS_1}
    r.active = {TICKS, TICKS_1, OTHER}
    r.fetch()
    assert r.rd.paused == set() and r.delivered[-1] == (TICKS_1, [0])
    assert r.aio.paused == {TICKS, TICKS_1}, "resuming in Faust must not resume aiokafka's fetch of the ticks"


def test_a_partition_paused_after_its_records_were_consumed_is_read_again_from_them() -> None:
    r = rd_rig({TICKS: 0, TICKS_1: 4})
    r.rd.queued = [Msg(TICKS, 0), Msg(TICKS_1, 4), Msg(TICKS_1, 5)]
    r.rd.during = lambda: r.active.discard(TICKS_1)
    r.fetch()
    assert r.delivered == [(TICKS, [0])]
    assert r.rd.calls[-1] == "seek 1 4", "records consumed but not delivered are lost"


def test_a_faust_seek_reassigns_librdkafka_at_the_new_position() -> None:
    r = rd_rig({TICKS: 0})
    r.fetch()

    async def seek() -> None:
        await r.consumer.seek(TICKS, 9)  # Faust's seek goes to aiokafka (faked away here) and then to librdkafka

    r.consumer._thread.seek = lambda tp, offset: r.aio.positions.__setitem__(tp, offset)
    asyncio.run(seek())
    r.fetch()
    assert r.rd.calls == ["assign [(0, 0)]", "assign [(0, 9)]"]


def test_a_rewind_reassigns_librdkafka_at_the_committed_offset_before_delivering() -> None:
    r = rd_rig({TICKS: 0})
    r.rd.queued = [Msg(TICKS, 0), Msg(TICKS, 1)]
    r.fetch()
    restored: list[str] = []

    async def committed(tp: TP) -> int:
        return 0

    async def seek_wait(aio: Any, offsets: Mapping[TP, int]) -> None:
        r.aio.positions.update(offsets)
        r.consumer._read_offset.update(offsets)  # as Faust's own seek_wait does

    async def on_rewound(tps: set[TP]) -> None:
        restored.append(f"restore then {r.rd.calls[-1]}")

    r.aio.committed = committed  # type: ignore[attr-defined]
    r.consumer._thread.seek_wait = lambda offsets: seek_wait(r.aio, offsets)
    r.app.on_rewound = on_rewound
    r.app.rewind([TICKS])
    r.rd.queued = [Msg(TICKS, 0), Msg(TICKS, 1)]
    r.fetch()
    assert r.rd.calls == ["assign [(0, 0)]", "assign [(0, 0)]"]
    assert restored == ["restore then assign [(0, 0)]"]
    assert r.delivered == [(TICKS, [0, 1]), (TICKS, [0, 1])]


def test_nothing_is_delivered_when_a_rebalance_comes_in_while_polling() -> None:
    r = rd_rig({TICKS: 0})
    r.rd.queued = [Msg(TICKS, 0)]
    r.rd.during = lambda: setattr(r.app, "consumer_generation_id", r.app.consumer_generation_id + 1)
    r.fetch()
    assert r.delivered == []
    r.rd.during = lambda: None
    r.rd.queued = [Msg(TICKS, 1)]
    r.rd.during = r.consumer.stop_flow
    r.fetch()
    assert r.delivered == [], "a batch was delivered after a rebalance stopped the flow"


def test_records_polled_across_a_seek_are_dropped_and_read_from_the_new_position() -> None:
    r = rd_rig({TICKS: 0})
    r.rd.queued = [Msg(TICKS, 0)]
    r.rd.during = r.consumer._moved  # what every seek of Faust's ends with (the poll awaits, a seek can come in)
    r.fetch()
    assert r.delivered == [], "records fetched before a seek were delivered"
    r.rd.during = lambda: None
    r.rd.queued = [Msg(TICKS, 0)]
    r.fetch()
    assert r.rd.calls == ["assign [(0, 0)]", "assign [(0, 0)]"] and r.delivered == [(TICKS, [0])]


def test_a_rebalance_started_by_a_handler_stops_delivery_of_the_other_partitions() -> None:
    r = rd_rig({TICKS: 0, TICKS_1: 0})
    r.rd.queued = [Msg(TICKS, 0), Msg(TICKS_1, 0)]
    handle = r.app.batch_handlers["ticks"]

    async def then_rebalance(tp: TP, batch: Sequence[Any]) -> None:
        await handle(tp, batch)
        r.app.consumer_generation_id += 1

    r.app.batch_handlers["ticks"] = then_rebalance
    r.fetch()
    assert r.delivered == [(TICKS, [0])], "a batch fetched in an older generation was delivered"


def test_broker_errors_are_logged_not_raised_and_a_lasting_one_not_on_every_retry() -> None:
    down = KafkaError(KafkaError._ALL_BROKERS_DOWN, "all brokers down")
    fetch = RdFetch(KafkaClientSettings(bootstrap_servers="127.0.0.1:1"), "g", 1, 0.0)
    with structlog.testing.capture_logs() as logs:
        polled = [Msg(TICKS, 0), Msg(TICKS, 0, err=down), Msg(TICKS, 1), Msg(TICKS, 0, err=down)]
        batches = by_partition(polled, fetch.report)  # type: ignore[arg-type]
        by_partition([Msg(TICKS, 2, err=down)], fetch.report)  # type: ignore[list-item]  # the next poll's
        for _ in range(3):
            fetch._on_error(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication failed"))
        fetch._on_error(KafkaError(KafkaError._TRANSPORT, "connection refused"))
    assert [rec.offset for rec in batches[TICKS]] == [0, 1]
    assert [(e["event"], e["code"]) for e in logs] == [
        ("librdkafka_fetch_error", "_ALL_BROKERS_DOWN"),
        ("librdkafka_fetch_error", "_AUTHENTICATION"),
        ("librdkafka_fetch_error", "_TRANSPORT"),
    ]
    assert fetch._unreported == {"_AUTHENTICATION": 2, "_ALL_BROKERS_DOWN": 2}, "an error event of every poll logged"


def test_the_consumer_takes_the_workers_tls_and_sasl_and_never_commits() -> None:
    settings = PredictorSettings(
        bootstrap_servers="k:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="u",
        sasl_password="p",
    )
    fetch = ticks_fetch(settings)
    assert fetch is not None
    assert fetch.config["security.protocol"] == "SASL_SSL" and fetch.config["sasl.username"] == "u"
    assert fetch.config["enable.auto.commit"] is False
    # An assigned offset out of range (the committed one deleted by retention): librdkafka's default jumps to the
    # end of the log, past every tick left, and the next checkpoint commits past them; aiokafka restarted at the
    # start (Faust's consumer_auto_offset_reset="earliest").
    assert fetch.config.get("auto.offset.reset") == "earliest", "an out-of-range offset skips to the end"
    assert ticks_fetch(PredictorSettings(bootstrap_servers="k:9092", librdkafka_fetch=False)) is None


@pytest.mark.parametrize("on", [True, False])
def test_the_setting_turns_it_on_and_off(on: bool) -> None:
    settings = PredictorSettings(bootstrap_servers="k:9092", librdkafka_fetch=on)
    assert (ticks_fetch(settings) is not None) is on


def test_fausts_seeks_still_go_through_the_calls_that_reassign_librdkafka() -> None:
    # A seek that bypassed them would leave librdkafka reading from where it was.
    assert "self.seek_to_committed()" in inspect.getsource(FaustConsumer.perform_seek)
    assert "self._seek(" in inspect.getsource(FaustConsumer.seek)
    assert "self.verify_event_path(" in inspect.getsource(FaustConsumer.verify_all_partitions_active)
    for name in ("seek_to_committed", "seek_wait", "_seek", "highwater", "on_stop", "verify_event_path"):
        ours, faust_s = getattr(RdFollowingConsumer, name), getattr(faust_aiokafka.Consumer, name)
        assert inspect.signature(ours).parameters.keys() == inspect.signature(faust_s).parameters.keys(), name


@pytest.mark.parametrize("on", [True, False])
def test_the_worker_fetches_its_ticks_through_librdkafka_unless_turned_off(on: bool) -> None:
    settings = PredictorSettings(bootstrap_servers="127.0.0.1:1", librdkafka_fetch=on, web_port=16069)
    with built_worker_app(settings) as (app, _):
        fetch = app.rd_fetch  # type: ignore[attr-defined]
        assert (fetch is not None) is on
        # Else aiokafka polls Faust's leader topic every fetch wait, on the thread that shares the GIL.
        assert app.conf.topic_disable_leader is on
        if fetch is not None:
            assert fetch.max_records == settings.max_poll_records
            assert fetch.config["fetch.wait.max.ms"] == settings.fetch_max_wait_ms
