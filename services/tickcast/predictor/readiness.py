"""Which assigned partitions are ready: their snapshots are loaded in the background, retried until they are.

A partition becomes *ready* once the most current snapshot of each of its symbols is
loaded into the forecaster (or found absent). Until then none of its ticks is processed:
the batch loop waits in :meth:`PartitionReadiness.wait_ready`. Loading never holds up the
group's rebalance and never crashes the worker: a read that fails is retried with backoff
for as long as the partition stays assigned (see :mod:`tickcast.predictor.restore`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog
from tenacity import RetryCallState

from tickcast.common.security import KafkaClientSettings
from tickcast.predictor.forecaster import Forecaster, SymbolState
from tickcast.predictor.restore import RestoreReport, SnapshotReader, read_latest, retry_restore, verified_snapshots
from tickcast.predictor.snapshots import SnapshotCodec

log = structlog.get_logger("tickcast.predictor")


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("restore_crashed", error=repr(task.exception()))


def _last_predicted_at(item: tuple[str, SymbolState]) -> int:
    prediction = item[1].last_prediction
    return -1 if prediction is None else prediction.predicted_at


@dataclass
class PartitionReadiness:
    """Restores assigned partitions' state into ``forecaster`` and says which partitions are ready."""

    forecaster: Forecaster
    codec: SnapshotCodec | None
    kafka: KafkaClientSettings
    snapshots_topic: str
    room: Callable[[], int]
    """How many more symbols this worker may hold (the eviction cap minus what it holds)."""
    timeout_s: float = 60.0
    backoff_s: tuple[float, float] = (0.5, 30.0)
    read_snapshots: SnapshotReader = read_latest
    ready: dict[int, asyncio.Event] = field(default_factory=dict)
    """Per assigned partition, set once its state is loaded (or it was revoked)."""
    not_ready: set[int] = field(default_factory=set)
    failures: int = 0
    refused_total: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    """Snapshots not loaded because the worker was at its symbol cap (a flood handed over)."""
    replay_horizon: dict[int, int] = field(default_factory=dict)
    """Per partition, the newest offset any restored state has already applied: replays up to it may be skipped."""
    last_report: RestoreReport | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self, partitions: Iterable[int]) -> None:
        """Start loading ``partitions`` (new to this worker) in the background; returns at once."""
        new = sorted(set(partitions) - set(self.ready))
        if not new:
            return
        events = {partition: asyncio.Event() for partition in new}
        self.ready.update(events)
        self.not_ready.update(new)
        task = asyncio.get_running_loop().create_task(self._restore(events))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    @property
    def restoring(self) -> int:
        """Restores running or waiting to retry."""
        return len(self._tasks)

    async def finished(self) -> None:
        """Wait until every restore started so far has finished (loaded, or its partitions revoked)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_ready(self, partition: int) -> bool:
        """Wait until the partition's state is loaded; False if it is not (or no longer) assigned here."""
        event = self.ready.get(partition)
        if event is None:
            return False
        if not event.is_set():
            await event.wait()
        return self.ready.get(partition) is event

    def forget(self, partitions: Iterable[int]) -> None:
        """The partitions are gone (revoked, stopped): release their waiters and stop their restores."""
        for partition in partitions:
            event = self.ready.pop(partition, None)
            if event is not None:
                event.set()  # wakes a batch waiting for this partition: wait_ready then says False
            self.not_ready.discard(partition)
            self.replay_horizon.pop(partition, None)

    def _still_assigned(self, events: dict[int, asyncio.Event]) -> list[int]:
        # Revoked (and perhaps assigned again, with a new event) partitions are someone else's business now.
        return [partition for partition, event in events.items() if self.ready.get(partition) is event]

    async def _restore(self, events: dict[int, asyncio.Event]) -> None:
        await retry_restore(
            lambda: self._restore_once(events), lambda: bool(self._still_assigned(events)),
            self.backoff_s, self._restore_failed,
        )  # fmt: skip
        for partition in self._still_assigned(events):
            self.not_ready.discard(partition)
            events[partition].set()

    def _restore_failed(self, retry_state: RetryCallState) -> None:
        self.failures += 1
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        waiting = retry_state.next_action.sleep if retry_state.next_action is not None else None
        log.error("state_restore_failed", partitions=sorted(self.not_ready), attempt=retry_state.attempt_number,
                  error=repr(error), retry_in_s=round(waiting, 2) if waiting else None)  # fmt: skip

    async def _restore_once(self, events: dict[int, asyncio.Event]) -> None:
        partitions = self._still_assigned(events)
        report = RestoreReport(partitions)
        started = time.perf_counter()
        if self.codec is not None:
            loop = asyncio.get_running_loop()
            raw = await loop.run_in_executor(
                None, self.read_snapshots, self.kafka, self.snapshots_topic, partitions,
                self.timeout_s, self.codec.rank,
            )  # fmt: skip
            snapshots = await loop.run_in_executor(None, verified_snapshots, self.codec, raw, report)
            # Revoked while reading: only what is still ours is loaded, over a clean slate.
            partitions = self._still_assigned(events)
            states = self.forecaster.states
            for symbol in [s for s, state in states.items() if state.partition in partitions]:
                del states[symbol]
            ours = sorted((s for s in snapshots if s.state.partition in partitions), key=lambda s: s.created_at)
            # A flood handed over: the most recently saved fit under the cap, the rest start fresh if they return.
            skipped = min(len(ours), max(0, len(ours) - self.room()))  # room is negative over the cap
            self.skipped += skipped
            for snapshot in ours[skipped:]:
                state = snapshot.state
                state.restored_from(snapshot.applied_offset, snapshot.generation)
                states[snapshot.symbol] = state
                horizon = self.replay_horizon.get(state.partition, -1)
                self.replay_horizon[state.partition] = max(horizon, state.applied_offset)
                report.restored += 1
            if report.restored:
                # Eviction takes the least recently seen first, in the states' order: restored symbols take their
                # place in it by their last prediction (the order is by it already), not after everything held.
                by_last_seen = sorted(states.items(), key=_last_predicted_at)
                states.clear()
                states.update(by_last_seen)
        report.seconds = time.perf_counter() - started
        self.last_report = report
        self.refused_total.update(report.refused)
        log.info(
            "state_restored", partitions=partitions, symbols=report.restored, refused=dict(report.refused),
            seconds=round(report.seconds, 4),
        )  # fmt: skip
