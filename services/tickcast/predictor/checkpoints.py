"""Per-partition checkpoints: when a partition's state must be snapshotted, and what is waiting on it.

A checkpoint of partition *p* writes the snapshot of every symbol of *p* that
changed since the last one, after the predictions of those ticks are delivered,
and only then commits the partition's offset, so the group's committed offset
never runs ahead of the saved state. Pure bookkeeping here; the I/O is in
:mod:`tickcast.predictor.state_sync`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """Snapshot a partition after ``every_ticks`` processed ticks or ``every_s`` seconds, whichever is first."""

    every_ticks: int = 1000
    every_s: float = 5.0


@dataclass(slots=True)
class PartitionProgress:
    """What happened on one partition since its last checkpoint.

    >>> progress = PartitionProgress(started_at=0.0)
    >>> progress.record({"SPY", "IBM"}, last_offset=41, ticks=2); progress.record({"SPY"}, last_offset=42, ticks=1)
    >>> sorted(progress.dirty), progress.ticks, progress.commit_offset
    (['IBM', 'SPY'], 3, 43)
    >>> progress.due(CheckpointPolicy(every_ticks=3), now=1.0)
    True
    >>> taken = progress.take(now=1.5); progress.record({"BAC"}, last_offset=44, ticks=1)
    >>> progress.merge(taken)  # a failed checkpoint gives back what it took
    >>> sorted(progress.dirty), progress.ticks, progress.commit_offset
    (['BAC', 'IBM', 'SPY'], 4, 45)
    >>> progress.reset(now=2.0); progress.due(CheckpointPolicy(every_s=5.0), now=3.0)
    False
    """

    started_at: float
    dirty: set[str] = field(default_factory=set)
    commit_offset: int | None = None
    """The offset to commit once this checkpoint is written: one past the last processed tick."""
    ticks: int = 0

    def record(self, symbols: Iterable[str], last_offset: int, ticks: int) -> None:
        self.dirty.update(symbols)
        self.commit_offset = last_offset + 1
        self.ticks += ticks

    @property
    def pending(self) -> bool:
        return self.commit_offset is not None

    def due(self, policy: CheckpointPolicy, now: float) -> bool:
        if self.commit_offset is None:
            return False
        return self.ticks >= policy.every_ticks or now - self.started_at >= policy.every_s

    def take(self, now: float) -> PartitionProgress:
        """Hand over what is pending to a checkpoint and start counting afresh."""
        taken = PartitionProgress(self.started_at, set(self.dirty), self.commit_offset, self.ticks)
        self.reset(now)
        return taken

    def merge(self, earlier: PartitionProgress) -> None:
        """Take back what a failed checkpoint could not save (it precedes everything recorded since)."""
        self.dirty |= earlier.dirty
        self.ticks += earlier.ticks
        self.started_at = min(self.started_at, earlier.started_at)
        if self.commit_offset is None:
            self.commit_offset = earlier.commit_offset

    def reset(self, now: float) -> None:
        self.dirty.clear()
        self.commit_offset = None
        self.ticks = 0
        self.started_at = now
