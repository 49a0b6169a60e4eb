"""Writing symbol snapshots (and tombstones) to the snapshots topic, never ahead of the predictions they cover.

Used by the checkpoint cycle and by eviction (:mod:`tickcast.predictor.state_sync`): both
encode some symbols' state, wait until every prediction produced so far is delivered, and
only then send the snapshots, so a snapshot can never claim a tick whose prediction could
still be lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from tickcast.predictor.forecaster import SymbolState
from tickcast.predictor.output import OutputProducer
from tickcast.predictor.snapshots import SnapshotCodec

#: Encoding runs at most this long before the event loop gets a turn (see :meth:`SnapshotWriter.encode_in_slices`).
SLICE_S = 0.002

#: One record for the snapshots topic: (partition, symbol, signed snapshot or None for a tombstone).
SnapshotRecord = tuple[int, str, bytes | None]


@dataclass
class SnapshotWriter:
    """Encodes states with ``codec`` and sends them through ``output`` after the predictions before them."""

    codec: SnapshotCodec
    output: OutputProducer
    topic: str
    written: int = 0
    """Snapshots delivered (tombstones not counted)."""
    tombstones: int = 0
    encoded_bytes: int = 0

    def encode(self, symbol: str, state: SymbolState, created_at: int, generation: int) -> bytes:
        """One signed snapshot of ``state``, stamped with the group ``generation`` that owns it."""
        value = self.codec.encode(symbol, state, created_at, generation=generation)
        self.encoded_bytes += len(value)
        return value

    async def encode_in_slices(
        self,
        dirty: Iterable[tuple[int, Iterable[str]]],
        states: dict[str, SymbolState],
        created_at: int,
        generation: int,
        may_encode: Callable[[], Awaitable[None]],
        slice_s: float = SLICE_S,
    ) -> list[SnapshotRecord]:
        """Snapshots of the ``dirty`` symbols that still have state, giving the event loop a turn every ``slice_s``.

        ``dirty`` is (partition, symbols) pairs; each partition's snapshots come in symbol order. Encoding one
        symbol costs ~1-1.5 ms (measured: 50 symbols, loaded 2-core box), so a checkpoint that encoded every
        dirty symbol at once held the loop for tens of ms with a few dozen symbols, and for seconds with
        thousands: every tick fetched meanwhile waited, and end-to-end latency had a spike per checkpoint.

        A symbol encoded after a turn may hold ticks the batch loop handled during that turn. That is safe
        because :meth:`deliver` first waits for every prediction sent before it is called, theirs included,
        provided ``may_encode`` returns only when no learned tick still waits to hand its outcome over. A
        symbol dropped meanwhile (revoked, evicted, halted) is skipped.
        """
        records: list[SnapshotRecord] = []
        clock = time.perf_counter
        await may_encode()  # the first slice too: the batch loop may have been waiting for room before this began
        slice_started = clock()
        for partition, symbols in dirty:
            for symbol in sorted(symbols):
                if clock() - slice_started >= slice_s:
                    await asyncio.sleep(0)
                    await may_encode()
                    slice_started = clock()
                state = states.get(symbol)
                if state is not None:
                    records.append((partition, symbol, self.encode(symbol, state, created_at, generation)))
        return records

    async def deliver(self, records: Sequence[SnapshotRecord]) -> None:
        """Deliver every prediction sent so far, then ``records``; raises ``DeliveryFailed`` if any is refused.

        The snapshots go to the partition of the ticks they cover, so a partition's new owner reads
        only its own. An empty ``records`` still waits for the predictions (a checkpoint without changes
        commits offsets, which must not run ahead of their predictions either).
        """
        await self.output.flush()
        if not records:
            return
        for partition, symbol, value in records:
            await self.output.put(self.topic, symbol.encode("utf-8"), value, partition=partition, source=partition)
        await self.output.flush()
        self.written += sum(1 for _, _, value in records if value is not None)
        self.tombstones += sum(1 for _, _, value in records if value is None)
