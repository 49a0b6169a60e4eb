"""The Faust side of fetching batch topics through librdkafka (:mod:`tickcast.predictor.rd_fetch`).

:class:`RdFollowingConsumer` is Faust's aiokafka consumer, with the fetch of the batch topics moved to an
:class:`~tickcast.predictor.rd_fetch.RdFetch` when the app has one. It follows aiokafka, never leads it:

* On each assignment (a new generation or other partitions) and after any seek of Faust's (the committed
  offsets after a rebalance, a rewind, ``Consumer.seek``), it pauses the batch topics' partitions in aiokafka
  and assigns exactly those to librdkafka, each at aiokafka's position for it.
* Faust's pause and resume of those partitions (``_get_active_partitions``) pause and resume them in librdkafka;
  aiokafka keeps them paused whatever Faust's flow control does.
* While a rebalance has stopped the flow, or after a seek came in during a poll, nothing of what was polled is
  delivered; librdkafka is re-assigned before the next poll.
* Other topics (Faust's own) are fetched by aiokafka, at most once per ``RdFetch.wait_s`` (a thread hop each).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import aiokafka
import structlog
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from tickcast.predictor.rd_fetch import RdFetch, by_partition, fresh_records

RecordMap = Mapping[TP, list[Any]]

log = structlog.get_logger("tickcast.predictor")


class RdFollowingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer; with ``app.rd_fetch`` set, the batch topics are fetched by librdkafka."""

    _others_at = 0.0

    async def _wait_rd(self, app: Any, rd: RdFetch) -> tuple[RecordMap | None, set[TP] | None]:
        if not self.flow_active:
            await self.wait(self.can_resume_flow)  # type: ignore[arg-type]
            return {}, None
        if app.pending_rewinds:
            await self._rewind(app)
        await self._follow(app, rd)
        active = self._get_active_partitions()
        rd.pause_only(rd.assigned - active)
        others = active - rd.assigned
        generation = app.consumer_generation_id
        messages = await rd.poll()
        stamp = app.own_share.fetched()
        app.fetched_at = stamp.at
        records: RecordMap = {}
        if others and stamp.at - self._others_at >= rd.wait_s:
            # Other topics (Faust's own) go through aiokafka, at most once per fetch wait: each call is a hop
            # to Faust's consumer thread and back.
            self._others_at = stamp.at
            records = await self._getmany(active_partitions=others, timeout=0)
        if not messages:
            return records, active
        batches = by_partition(messages, rd.report)
        handlers = app.batch_handlers
        for tp, batch in batches.items():
            if app.consumer_generation_id != generation or not self.flow_active or rd.dirty:
                break  # a rebalance or a seek came in: rd is re-assigned where aiokafka stands before the next poll
            if tp not in active and tp not in self._buffered_partitions:
                rd.seek_back(tp, batch[0].offset)  # paused by Faust meanwhile: read these again once resumed
                continue
            fresh = fresh_records(batch, self._read_offset[tp])
            if not fresh:
                continue
            app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            app.monitor.stream_inbound_time[tp] = time.monotonic()
            await handlers[tp.topic](tp, fresh)
            if app.consumer_generation_id != generation:
                break  # the handler outlived a rebalance: Faust's seek set the read offset, don't move it past
            self._read_offset[tp] = fresh[-1].offset + 1
        app.own_share.batch_done(stamp)
        for done in app.after_fetch:
            done()
        return records, active

    async def _follow(self, app: Any, rd: RdFetch) -> None:
        tps = frozenset(tp for tp in self.assignment() if tp.topic in app.batch_handlers)
        key = (app.consumer_generation_id, tps)
        if key == rd.key and not rd.dirty:
            return
        rd.dirty = False
        thread = cast(faust_aiokafka.AIOKafkaConsumerThread, self._thread)
        try:
            positions = await thread.call_thread(_pause_and_locate, thread._ensure_consumer(), sorted(tps))
        except aiokafka.errors.IllegalStateError as exc:
            # Read on this loop, asked on aiokafka's thread: a rebalance revoked one meanwhile. Deliver nothing
            # of this poll (dirty) and follow the new assignment on the next one.
            log.info("librdkafka_follow_retried", error=str(exc))
            rd.dirty = True
            return
        rd.assign(positions)
        rd.key = key

    def highwater(self, tp: TP) -> int:
        rd = cast(Any, self.app).rd_fetch
        if rd is not None and tp in rd.assigned:
            return cast(int, rd.highwater(tp))
        return super().highwater(tp)

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's livelock check (every few seconds, per assigned partition), on what librdkafka fetches too."""
        rd = cast(Any, self.app).rd_fetch
        if rd is None or tp not in rd.assigned:
            super().verify_event_path(now, tp)
            return
        # Faust's check asks first whether aiokafka fetched the partition lately: it keeps these paused, so the
        # answer would be an error every few seconds from the fifth minute on. Its next question, asked here:
        # are there ticks beyond the read offset while no batch of the partition was handed over for so long?
        highwater, read = rd.highwater(tp), self._read_offset.get(tp)
        inbound = self.app.monitor.stream_inbound_time.get(tp)
        timeout = self.app.conf.stream_processing_timeout
        if highwater is None:
            # No fetch of it answered since it was assigned (librdkafka keeps retrying, see librdkafka_fetch_error).
            if now - rd.assigned_at >= timeout:
                log.error("ticks_partition_not_fetched", topic=tp.topic, partition=tp.partition,
                          since_s=round(now - rd.assigned_at, 1), setting="stream_processing_timeout")  # fmt: skip
            return
        if read is None or highwater <= read or inbound is None or now - inbound < timeout:
            return
        log.error("ticks_partition_stalled", topic=tp.topic, partition=tp.partition, waiting=highwater - read,
                  idle_s=round(now - inbound, 1), setting="stream_processing_timeout")  # fmt: skip

    def _moved(self) -> None:
        rd = cast(Any, self.app).rd_fetch
        if rd is not None:
            rd.dirty = True

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        await super().seek_wait(partitions)
        self._moved()

    async def _seek(self, partition: TP, offset: int) -> None:
        await super()._seek(partition, offset)
        self._moved()

    async def seek_to_committed(self) -> Mapping[TP, int]:
        offsets = await super().seek_to_committed()
        self._moved()
        return offsets

    async def on_stop(self) -> None:
        await super().on_stop()
        rd = cast(Any, self.app).rd_fetch
        if rd is not None:
            rd.close()

    async def _rewind(self, app: Any) -> None:
        raise NotImplementedError  # faust_tuning's consumer re-reads from the committed offsets


async def _pause_and_locate(consumer: aiokafka.AIOKafkaConsumer, tps: Sequence[TP]) -> dict[TP, int]:
    # On the consumer thread: aiokafka stops fetching these (the librdkafka consumer does) and says where
    # it stands for them, which is where Faust sought them (committed offsets after an assignment).
    parts = [aiokafka.TopicPartition(tp.topic, tp.partition) for tp in tps]
    consumer.pause(*parts)
    return {tp: await consumer.position(part) for tp, part in zip(tps, parts, strict=True)}
