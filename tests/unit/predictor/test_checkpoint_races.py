"""Checkpoints racing the batch loop, which runs between their encoding slices (see test_state_sync's harness)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from .test_state_sync import PARTITION, Harness, _recording_encodes, codec


def test_a_partition_halted_while_its_checkpoint_encodes_is_not_committed_past_unsaved_state() -> None:
    # The batch loop runs between the checkpoint's encoding slices. A partition halted there (PartitionHalted:
    # keeper.stop) loses its states, so the symbols not encoded yet were skipped, and the offsets of the cut
    # were committed all the same: the next owner read on from there over older snapshots, and the ticks
    # between (predicted, learned) were neither in a snapshot nor replayed.
    async def scenario() -> tuple[list[dict[int, int]], int]:
        h = Harness(codec())
        for number in range(10):
            h.process(f"S{number:02d}", range(number * 3, number * 3 + 3))
        writer = h.keeper.writer
        assert writer is not None
        writer.encode_in_slices = functools.partial(writer.encode_in_slices, slice_s=0.0)  # type: ignore[method-assign]
        encoded = asyncio.Event()
        encode = writer.encode

        def first_encoded(*args: Any, **kwargs: Any) -> bytes:
            encoded.set()
            return encode(*args, **kwargs)

        writer.encode = first_encoded  # type: ignore[method-assign]

        async def batch_loop_halting_the_partition() -> None:
            await encoded.wait()
            h.keeper.stop({PARTITION})

        halting = asyncio.create_task(batch_loop_halting_the_partition())
        await h.keeper.checkpoint([PARTITION])
        await halting
        return h.commits, sum(1 for topic, *_ in h.output.sent if topic == "snapshots")

    commits, snapshots = asyncio.run(scenario())
    assert snapshots == 10 or not any(PARTITION in c for c in commits), (
        f"committed {commits} with {snapshots} of the 10 changed symbols snapshotted"
    )


def test_no_snapshot_is_encoded_while_a_tick_learned_before_the_checkpoint_started_waits_for_room() -> None:
    # The batch loop was already waiting for room (its tick learned, its prediction unsent) when a checkpoint
    # started: the first slice was encoded without asking, so a snapshot could claim that tick, be delivered
    # before its prediction, and a failover would then skip the tick as applied: its prediction never sent.
    async def scenario() -> list[int]:
        h = Harness(codec())
        for number in range(5):
            h.process(f"S{number:02d}", range(number * 3, number * 3 + 3))
        h.keeper.ticks_awaiting_room += 1  # the batch loop waits for room in the output queue
        room = asyncio.Event()

        async def batch_loop_under_backpressure() -> None:
            await room.wait()
            h.keeper.ticks_awaiting_room -= 1

        seen: list[int] = []
        _recording_encodes(h, seen, lambda: h.keeper.ticks_awaiting_room)
        waiting = asyncio.create_task(batch_loop_under_backpressure())
        checkpoint = asyncio.create_task(h.keeper.checkpoint([PARTITION]))
        await asyncio.sleep(0)  # the checkpoint starts (a turn) before the output queue has room
        room.set()
        await asyncio.gather(checkpoint, waiting)
        return seen

    awaiting_room_at_each_encode = asyncio.run(scenario())
    assert awaiting_room_at_each_encode == [0] * 5, (
        f"ticks awaiting room at each snapshot encoded: {awaiting_room_at_each_encode}"
    )
