"""Writing symbol snapshots (and tombstones) to the snapshots topic, never ahead of the predictions they cover.

Used by the checkpoint cycle and by eviction (:mod:`tickcast.predictor.state_sync`): both
encode some symbols' state, wait until every prediction produced so far is delivered, and
only then send the snapshots, so a snapshot can never claim a tick whose prediction could
still be lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tickcast.predictor.forecaster import SymbolState
from tickcast.predictor.output import OutputProducer
from tickcast.predictor.snapshots import SnapshotCodec

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

    def encode_all(
        self, partition: int, symbols: Iterable[str], states: dict[str, SymbolState], created_at: int, generation: int
    ) -> list[SnapshotRecord]:
        """Snapshots of those ``symbols`` that still have state, in symbol order."""
        return [
            (partition, symbol, self.encode(symbol, states[symbol], created_at, generation))
            for symbol in sorted(symbols)
            if symbol in states
        ]

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
