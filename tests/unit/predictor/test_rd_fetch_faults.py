"""The librdkafka fetch of the ticks under faults: rebalances mid-batch, revocations mid-follow, shutdown, stalls.

Same rigs as ``test_rd_fetch`` (librdkafka path) and ``test_faust_tuning`` (aiokafka path): Faust's real
``getmany`` on a real consumer of a :class:`TunedApp`, with the clients under it faked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import aiokafka
import structlog
from faust.types import TP

from tickcast.common.security import KafkaClientSettings
from tickcast.predictor.faust_tuning import TunedApp
from tickcast.predictor.rd_fetch import RdFetch

from .test_faust_tuning import records, rig
from .test_rd_fetch import OTHER, TICKS, FakeRd, Msg, rd_rig


def test_a_handler_that_returns_after_a_rebalance_leaves_the_read_offset_where_faust_sought_it() -> None:
    # The handler waited (for room in the output queue, for a restore) while a rebalance gave its partition back
    # to this worker and Faust sought it to the committed offset; it returns without handling the batch.
    r = rd_rig({TICKS: 5})
    r.rd.queued = [Msg(TICKS, 5), Msg(TICKS, 6), Msg(TICKS, 7)]
    handle = r.app.batch_handlers["ticks"]

    async def rebalanced_meanwhile(tp: TP, batch: Sequence[Any]) -> None:
        r.app.consumer_generation_id += 1
        r.consumer._read_offset[tp] = 5  # Faust's perform_seek: the committed offset
        r.app.batch_handlers["ticks"] = handle

    r.app.batch_handlers["ticks"] = rebalanced_meanwhile
    r.fetch()
    r.rd.queued = [Msg(TICKS, 5), Msg(TICKS, 6), Msg(TICKS, 7)]
    r.fetch()
    assert r.rd.calls == ["assign [(0, 5)]", "assign [(0, 5)]"]
    assert r.delivered == [(TICKS, [5, 6, 7])], "ticks never handled were dropped as already read (then committed past)"


def test_fausts_livelock_check_does_not_report_the_ticks_idle_because_aiokafka_keeps_them_paused() -> None:
    r = rd_rig({TICKS: 0})
    r.rd.queued = [Msg(TICKS, 0)]
    r.fetch()
    thread = TunedApp(f"t-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1").consumer._thread  # type: ignore[attr-defined]
    never_fetched = SimpleNamespace(timestamp=None, highwater=None, position=0)
    assignment = SimpleNamespace(active=True, state_value=lambda tp: never_fetched)
    thread._consumer = SimpleNamespace(
        _fetcher=SimpleNamespace(_subscriptions=SimpleNamespace(subscription=SimpleNamespace(assignment=assignment)))
    )
    thread.time_started = 0.0
    errors: list[str] = []
    thread.log = SimpleNamespace(error=lambda msg, *args: errors.append(msg % args))
    r.consumer._thread = thread
    r.consumer.verify_event_path(10_000.0, TICKS)  # Faust's livelock detector, long after the worker started
    assert errors == [], "every few seconds, for every partition fetched by librdkafka"
    r.consumer.verify_event_path(10_000.0, OTHER)
    assert len(errors) == 1 and "has not sent fetch request" in errors[0], "aiokafka's own topics are still checked"
    # Its question of the stream stays: ticks beyond the read offset (1; highwater 100), none handed over lately.
    with structlog.testing.capture_logs() as logs:
        r.consumer.verify_event_path(r.app.monitor.stream_inbound_time[TICKS] + 1.0, TICKS)
        assert logs == []
        r.consumer.verify_event_path(r.app.monitor.stream_inbound_time[TICKS] + 301.0, TICKS)
    assert [(e["event"], e["partition"], e["waiting"]) for e in logs] == [("ticks_partition_stalled", 0, 99)]


def test_fausts_livelock_check_reports_a_partition_librdkafka_never_got_an_answer_for() -> None:
    # E.g. librdkafka alone refused by the broker while aiokafka keeps the group: nothing else would say so.
    r = rd_rig({TICKS: 0})
    r.rd.get_watermark_offsets = lambda part, cached=False: (-1001, -1001)  # type: ignore[method-assign]
    r.fetch()
    assigned_at = r.app.rd_fetch.assigned_at  # type: ignore[union-attr]
    with structlog.testing.capture_logs() as logs:
        r.consumer.verify_event_path(assigned_at + 10.0, TICKS)
        assert logs == []
        r.consumer.verify_event_path(assigned_at + 300.0, TICKS)
    assert [(e["event"], e["partition"]) for e in logs] == [("ticks_partition_not_fetched", 0)]


def test_a_partition_revoked_before_aiokafka_is_asked_where_it_stands_is_followed_on_the_next_fetch() -> None:
    # The assignment is read on the event loop, aiokafka asked on its own thread: a rebalance can come between.
    r = rd_rig({TICKS: 0})
    r.rd.queued = [Msg(TICKS, 0)]
    pause = r.aio.pause

    def revoked_meanwhile(*parts: Any) -> None:
        r.aio.pause = pause  # type: ignore[method-assign]
        raise aiokafka.errors.IllegalStateError(f"No current assignment for partition {parts[0]}")

    r.aio.pause = revoked_meanwhile  # type: ignore[method-assign]
    r.fetch()  # raised out of Faust's fetch loop, which crashed the worker
    assert r.delivered == []
    r.fetch()
    assert r.rd.calls == ["assign [(0, 0)]"] and r.delivered == [(TICKS, [0])]


def test_nothing_reassigns_librdkafka_after_close() -> None:
    # Faust stops its fetch loop before the consumer only when the worker has an assignment: else the loop's last
    # round may follow a rebalance after on_stop closed this, and would build a consumer that no one closes.
    fetch = RdFetch(KafkaClientSettings(bootstrap_servers="127.0.0.1:1"), "g", max_records=10, wait_s=0.0)
    fetch.consumer = FakeRd()  # type: ignore[assignment]
    fetch.close()
    fetch.assign({TICKS: 0})
    assert fetch.consumer is None and asyncio.run(fetch.poll()) == []


def test_aiokafka_path_a_handler_that_returns_after_a_rebalance_leaves_the_read_offset_where_faust_sought_it() -> None:
    # The handler waited (for room in the output queue, for a restore) while a rebalance gave its partition back
    # to this worker and Faust sought it to the committed offset; it returns without handling the batch.
    r = rig()  # the aiokafka fetch (TICKCAST_LIBRDKAFKA_FETCH=false)

    def rebalanced_meanwhile(tp: TP) -> None:
        r.app.consumer_generation_id += 1
        r.consumer._read_offset[tp] = 5  # Faust's perform_seek: the committed offset
        r.on_batch = lambda tp: None

    r.on_batch = rebalanced_meanwhile
    r.fetch({TICKS: records(TICKS, 5, 6, 7)})
    r.fetch({TICKS: records(TICKS, 5, 6, 7)})

    async def twice() -> None:
        await r.next_fetch()
        await r.next_fetch()

    r.run(twice)
    assert r.delivered[1:] == [(TICKS, [5, 6, 7])], "ticks never handled were dropped as already read"
