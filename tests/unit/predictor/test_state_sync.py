"""The checkpoint cycle without Kafka: what is committed, when, and what a snapshot claims.

A fake output lets a test hold a flush open and process more ticks meanwhile, which is
what a worker does when its timer checkpoints while a batch is being handled.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tickcast.common.records import Lineage, Tick
from tickcast.common.security import KafkaClientSettings
from tickcast.predictor.checkpoints import CheckpointPolicy, PartitionProgress
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.models import model_spec
from tickcast.predictor.output import DeliveryFailed, OutputProducer
from tickcast.predictor.snapshots import SnapshotCodec
from tickcast.predictor.state_sync import StateKeeper

PARTITION = 3


class FakeOutput:
    """Records sends; a flush can be held open (``gate``), fail once (``fail_next``), or find refusals (``refused``).

    Like :class:`OutputProducer`, refused source partitions stay refused until :meth:`forget`.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None]] = []
        self.gate: asyncio.Event | None = None
        self.flush_started = asyncio.Event()
        self.fail_next = False
        self.refused: set[int] = set()
        self.forgotten: list[set[int]] = []

    async def put(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        source: int | None = None,
    ) -> None:
        self.sent.append((topic, key, value, partition))

    def forget(self, partitions: Any) -> None:
        self.forgotten.append(set(partitions))
        self.refused -= set(partitions)

    async def flush(self, timeout_s: float = 60.0) -> None:
        self.flush_started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.refused:
            raise DeliveryFailed("refused", self.refused)
        if self.fail_next:
            self.fail_next = False
            raise DeliveryFailed("broker said no")


class Harness:
    def __init__(self, codec: SnapshotCodec | None = None) -> None:
        self.forecaster = Forecaster(model_spec("linear"), worker="w")
        self.output = FakeOutput()
        self.commits: list[dict[int, int]] = []
        self.rewound: list[set[int]] = []
        self.keeper = StateKeeper(
            forecaster=self.forecaster,
            codec=codec,
            kafka=KafkaClientSettings(bootstrap_servers="unused:1"),
            snapshots_topic="snapshots",
            output=self.output,  # type: ignore[arg-type]  # duck-typed stand-in
            commit=self.commit,
            policy=CheckpointPolicy(every_ticks=5, every_s=3600.0),
            rewind=self.rewound.append,
        )
        self.own(PARTITION)

    def own(self, partition: int) -> None:
        self.keeper.progress[partition] = PartitionProgress(started_at=time.monotonic())
        self.keeper.ready[partition] = _set_event()

    async def commit(self, offsets: dict[int, int]) -> bool:
        self.commits.append(dict(offsets))
        return True

    def process(self, symbol: str, offsets: range, partition: int = PARTITION) -> None:
        for offset in offsets:
            tick = Tick(symbol, 100.0 + (offset % 7) * 0.01, 1.0, offset)
            self.forecaster.process(tick, Lineage("ticks", partition, offset, offset), now_us=offset)
        self.keeper.after_batch(partition, {symbol}, offsets[-1], len(offsets))


def _set_event() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


def codec() -> SnapshotCodec:
    return SnapshotCodec(b"k", "linear", model_spec("linear").version, worker="w")


def test_offsets_are_committed_only_at_a_due_checkpoint_and_one_past_the_last_tick() -> None:
    async def scenario() -> list[dict[int, int]]:
        h = Harness()
        h.process("SPY", range(0, 3))
        await h.keeper.checkpoint_due()
        assert h.commits == []  # 3 ticks < every_ticks=5
        h.process("SPY", range(3, 6))
        await h.keeper.checkpoint_due()
        return h.commits

    assert asyncio.run(scenario()) == [{PARTITION: 6}]


def test_ticks_processed_during_a_checkpoint_belong_to_the_next_one() -> None:
    async def scenario() -> tuple[Harness, list[int]]:
        h = Harness(codec())
        h.process("SPY", range(0, 10))
        h.output.gate = asyncio.Event()
        checkpoint = asyncio.create_task(h.keeper.checkpoint([PARTITION]))
        await h.output.flush_started.wait()
        h.process("IBM", range(10, 14))  # arrives while the predictions are being flushed
        h.output.gate.set()
        await checkpoint
        snapshot_codec = codec()
        claimed = [snapshot_codec.decode(value).state.applied_offset for _, _, value, _ in h.output.sent if value]
        await h.keeper.checkpoint([PARTITION])
        return h, claimed

    h, claimed_by_first = asyncio.run(scenario())
    # The first snapshot was cut before the flush: it claims offset 9, not the ticks that came after.
    assert claimed_by_first == [9]
    assert h.commits == [{PARTITION: 10}, {PARTITION: 14}]
    assert [key for _, key, _, _ in h.output.sent] == [b"SPY", b"IBM"]


def test_a_failed_delivery_commits_nothing_and_the_next_checkpoint_retries_everything() -> None:
    async def scenario() -> Harness:
        h = Harness(codec())
        h.process("SPY", range(0, 6))
        h.output.fail_next = True
        await h.keeper.checkpoint([PARTITION])
        assert h.commits == []
        h.process("BAC", range(6, 8))
        await h.keeper.checkpoint([PARTITION])
        return h

    h = asyncio.run(scenario())
    assert h.commits == [{PARTITION: 8}]
    # Both symbols changed since the last successful checkpoint, so both are snapshotted.
    assert sorted(key for topic, key, _, _ in h.output.sent if topic == "snapshots") == [b"BAC", b"SPY"]


def test_concurrent_checkpoints_do_not_commit_the_same_cut_twice() -> None:
    async def scenario() -> Harness:
        h = Harness()
        h.process("SPY", range(0, 6))
        await asyncio.gather(h.keeper.checkpoint([PARTITION]), h.keeper.checkpoint_due(), h.keeper.checkpoint_due())
        return h

    assert asyncio.run(scenario()).commits == [{PARTITION: 6}]


def test_revocation_checkpoints_then_forgets_the_partition() -> None:
    async def scenario() -> Harness:
        h = Harness(codec())
        h.process("SPY", range(0, 2))
        await h.keeper.on_revoked({PARTITION})
        return h

    h = asyncio.run(scenario())
    assert h.commits == [{PARTITION: 2}]
    assert "SPY" not in h.forecaster.states and PARTITION not in h.keeper.progress
    assert asyncio.run(h.keeper.wait_ready(PARTITION)) is False


@pytest.mark.parametrize("horizon_offset", [4, 9])
def test_replayed_ticks_up_to_a_restored_state_are_recognised(horizon_offset: int) -> None:
    h = Harness()
    h.process("SPY", range(0, horizon_offset + 1))
    assert h.keeper.already_applied("SPY", PARTITION, horizon_offset)
    assert not h.keeper.already_applied("SPY", PARTITION, horizon_offset + 1)
    assert not h.keeper.already_applied("SPY", PARTITION + 1, 0)


def test_checkpoint_soon_runs_beside_the_caller_and_one_at_a_time() -> None:
    async def scenario() -> Harness:
        h = Harness()
        h.process("SPY", range(0, 6))
        h.output.gate = asyncio.Event()
        h.keeper.checkpoint_soon()
        await h.output.flush_started.wait()  # running, and the caller was not blocked to get here
        h.process("SPY", range(6, 12))  # due again while the first one waits
        h.keeper.checkpoint_soon()  # must not start a second one beside it
        h.output.gate.set()
        assert h.keeper._background is not None
        await h.keeper._background
        h.keeper.checkpoint_soon()
        assert h.keeper._background is not None
        await h.keeper._background
        return h

    assert asyncio.run(scenario()).commits == [{PARTITION: 6}, {PARTITION: 12}]


def test_waiting_for_an_epoch_ignores_later_sends_and_reports_refusals_until_their_partition_is_rewound() -> None:
    async def scenario() -> None:
        # Nothing listens on port 1: librdkafka gives up on each message after its timeout.
        output = OutputProducer(
            KafkaClientSettings(bootstrap_servers="127.0.0.1:1"), 0, **{"message.timeout.ms": 200, "log_level": 0}
        )
        try:
            empty = output.mark()
            assert output.send("t", b"k", b"v", source=PARTITION)
            await asyncio.wait_for(output.delivered(empty), 1.0)  # the later send does not hold it up
            failing = output.mark()
            with pytest.raises(DeliveryFailed, match="refused") as first:
                await output.delivered(failing, timeout_s=10.0)
            assert first.value.partitions == {PARTITION}
            # Still refused at the next wait: no checkpoint may commit past the lost output...
            with pytest.raises(DeliveryFailed) as again:
                await output.delivered(output.mark())
            assert again.value.partitions == {PARTITION}
            # ...until the partition is rewound; refusals of what was sent before the rewind are then moot.
            assert output.send("t", b"k", b"v", source=PARTITION)
            output.forget({PARTITION})
            await output.delivered(output.mark(), timeout_s=10.0)
            assert output.refused == {}
        finally:
            output.close(0.5)

    asyncio.run(scenario())


def test_a_fenced_worker_writes_no_snapshot_and_commits_nothing() -> None:
    async def scenario() -> tuple[Harness, list[int]]:
        h = Harness(codec())
        live = [7]
        h.keeper.generation = lambda: live[0]
        await h.keeper.on_assigned(set())  # the assignment of generation 7 (PARTITION is set up already)
        h.process("SPY", range(0, 3))
        await h.keeper.checkpoint([PARTITION])
        stamped = [codec().decode(value).generation for _, _, value, _ in h.output.sent if value]
        live[0] = -1  # stalled past the session timeout: the coordinator dropped us, a new owner took over
        h.process("SPY", range(3, 6))
        await h.keeper.on_revoked({PARTITION})
        return h, stamped

    h, stamped = asyncio.run(scenario())
    assert stamped == [7]
    assert h.commits == [{PARTITION: 3}] and len(h.output.sent) == 1
    assert h.keeper.fenced_checkpoints == 1 and h.keeper.health().checkpoints_fenced == 1


def test_a_refused_output_rewinds_its_partition_and_nothing_past_it_is_committed() -> None:
    other = PARTITION + 1

    async def scenario() -> Harness:
        h = Harness(codec())
        h.own(other)
        h.process("SPY", range(0, 6))
        h.process("IBM", range(0, 3), partition=other)
        h.output.refused = {PARTITION}  # a prediction of one of SPY's ticks was finally refused
        await h.keeper.checkpoint([PARTITION, other])
        assert h.commits == [] and h.rewound == [{PARTITION}]
        # The rewound partition is forgotten until the consumer re-read it; the other one commits next time.
        assert "SPY" not in h.forecaster.states and PARTITION not in h.keeper.progress
        assert not await h.keeper.wait_ready(PARTITION)
        await h.keeper.checkpoint([PARTITION, other])
        return h

    h = asyncio.run(scenario())
    assert h.commits == [{other: 3}]
    assert h.output.forgotten == [{PARTITION}] and h.keeper.rewinds == 1


def test_a_refusal_found_by_another_partitions_checkpoint_still_rewinds_its_own() -> None:
    other = PARTITION + 1

    async def scenario() -> Harness:
        h = Harness()
        h.own(other)
        h.process("SPY", range(0, 6))
        h.process("IBM", range(0, 6), partition=other)
        h.output.refused = {PARTITION}
        await h.keeper.checkpoint([other])  # PARTITION is not due, yet its refusal must not wait for it
        await h.keeper.checkpoint([other])
        return h

    h = asyncio.run(scenario())
    assert h.rewound == [{PARTITION}] and h.commits == [{other: 6}]


def test_a_partition_handed_over_with_a_refused_output_is_not_committed_nor_rewound() -> None:
    async def scenario() -> Harness:
        h = Harness(codec())
        h.process("SPY", range(0, 6))
        h.output.refused = {PARTITION}
        await h.keeper.on_revoked({PARTITION})
        return h

    h = asyncio.run(scenario())
    assert h.commits == [] and h.rewound == [] and h.output.forgotten == [{PARTITION}]
    assert PARTITION not in h.keeper.progress and "SPY" not in h.forecaster.states


def _recording_encodes(h: Harness, seen: list[int], value: Any) -> None:
    """Have every snapshot encode append ``value()`` to ``seen`` (what was going on when it was encoded)."""
    writer = h.keeper.writer
    assert writer is not None
    encode = writer.encode

    def recorded(*args: Any, **kwargs: Any) -> bytes:
        seen.append(value())
        return encode(*args, **kwargs)

    writer.encode = recorded  # type: ignore[method-assign]


def test_a_checkpoint_of_many_symbols_gives_the_event_loop_turns_while_it_encodes() -> None:
    async def scenario() -> tuple[list[int], int]:
        h = Harness(codec())
        for number in range(40):
            h.process(f"S{number:02d}", range(number * 3, number * 3 + 3))
        turns = [0]

        async def other_work() -> None:  # stands in for the batch loop: counts its turns
            while True:
                turns[0] += 1
                await asyncio.sleep(0)

        seen: list[int] = []
        _recording_encodes(h, seen, lambda: turns[0])
        spinner = asyncio.create_task(other_work())
        await h.keeper.checkpoint([PARTITION])
        spinner.cancel()
        return seen, len(h.output.sent)

    turns_seen, sent = asyncio.run(scenario())
    assert sent == 40
    # 40 snapshots take tens of ms: other work ran between the first encode and the last, not only after.
    assert turns_seen[-1] > turns_seen[0], turns_seen


def test_no_snapshot_is_encoded_while_a_learned_tick_waits_for_room_to_send_its_prediction() -> None:
    async def scenario() -> list[int]:
        h = Harness(codec())
        for number in range(40):
            h.process(f"S{number:02d}", range(number * 3, number * 3 + 3))

        async def batch_loop_under_backpressure() -> None:
            await asyncio.sleep(0)  # the checkpoint has started encoding
            h.keeper.ticks_awaiting_room += 1
            await asyncio.sleep(0.05)  # the output queue is full this long
            h.keeper.ticks_awaiting_room -= 1

        seen: list[int] = []
        _recording_encodes(h, seen, lambda: h.keeper.ticks_awaiting_room)
        waiting = asyncio.create_task(batch_loop_under_backpressure())
        await h.keeper.checkpoint([PARTITION])
        await waiting
        return seen

    awaiting_room_at_each_encode = asyncio.run(scenario())
    assert len(awaiting_room_at_each_encode) == 40
    assert set(awaiting_room_at_each_encode) == {0}
