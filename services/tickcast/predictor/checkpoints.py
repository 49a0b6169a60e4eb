"""Per-partition checkpoints: when a partition's state must be snapshotted, and what is waiting on it.

A checkpoint of partition *p* writes the snapshot of every symbol of *p* that
changed since the last one, after the predictions of those ticks are delivered,
and only then acknowledges the ticks, so the group's committed offset never
runs ahead of the saved state. Pure bookkeeping here; the I/O is in
:mod:`tickcast.predictor.state_sync`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """Snapshot a partition after ``every_ticks`` processed ticks or ``every_s`` seconds, whichever is first."""

    every_ticks: int = 1000
    every_s: float = 5.0


@dataclass(slots=True)
class PartitionProgress:
    """What happened on one partition since its last checkpoint.

    >>> progress = PartitionProgress(started_at=0.0)
    >>> progress.record("SPY", event="e1"); progress.record("IBM", event="e2"); progress.record("SPY", event="e3")
    >>> sorted(progress.dirty), progress.ticks, progress.due(CheckpointPolicy(every_ticks=3), now=1.0)
    (['IBM', 'SPY'], 3, True)
    >>> progress.reset(now=2.0); progress.due(CheckpointPolicy(every_s=5.0), now=3.0)
    False
    """

    started_at: float
    dirty: set[str] = field(default_factory=set)
    held: list[Any] = field(default_factory=list)
    ticks: int = 0

    def record(self, symbol: str | None, event: Any) -> None:
        if symbol is not None:
            self.dirty.add(symbol)
        self.held.append(event)
        self.ticks += 1

    def due(self, policy: CheckpointPolicy, now: float) -> bool:
        if not self.held:
            return False
        return self.ticks >= policy.every_ticks or now - self.started_at >= policy.every_s

    def reset(self, now: float) -> None:
        self.dirty.clear()
        self.held.clear()
        self.ticks = 0
        self.started_at = now
