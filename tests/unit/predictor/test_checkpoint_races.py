"""Checkpoints racing the batch loop, which runs between their encoding slices (see test_state_sync's harness)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from .test_state_sync import PARTITION, Harness, codec


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
