"""Moving per-symbol state with its partition: restore on assignment, checkpoint while running and on revocation.

Guarantee (see README, "State and failover"): predictions are at-least-once. A
tick whose prediction went out before its symbol's last snapshot is never
predicted or learned again; ticks after the last checkpoint of a partition are
replayed by the next owner, which learns from them again and re-emits their
predictions. A duplicate has the same (source_topic, source_partition,
source_offset) lineage as the original.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import structlog
from tenacity import RetryCallState

from tickcast.predictor.checkpoints import CheckpointPolicy, PartitionProgress
from tickcast.predictor.eviction import EvictionPolicy
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.metrics import StateHealth
from tickcast.predictor.output import DeliveryFailed, OutputProducer
from tickcast.predictor.restore import RestoreReport, SnapshotReader, read_latest, retry_restore, verified_snapshots
from tickcast.predictor.snapshots import SnapshotCodec

log = structlog.get_logger("tickcast.predictor")


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("checkpoint_crashed", error=repr(task.exception()))


@dataclass
class StateKeeper:
    """Owns the per-partition checkpoint cycle of one worker.

    ``commit`` commits "next offset to read" per partition of the ticks topic; it is
    only called after that partition's predictions and snapshots are delivered.
    """

    forecaster: Forecaster
    codec: SnapshotCodec | None
    bootstrap_servers: str
    snapshots_topic: str
    output: OutputProducer
    commit: Callable[[dict[int, int]], Awaitable[bool]]
    policy: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    eviction: EvictionPolicy = field(default_factory=lambda: EvictionPolicy(max_symbols=20_000, ttl_s=86_400.0))
    rewind: Callable[[set[int]], None] = lambda partitions: None
    """Have the consumer re-read ``partitions`` from their committed offsets, then call :meth:`on_assigned`."""
    restore_timeout_s: float = 60.0
    """Longest one attempt to read the snapshots may take; a failed attempt is retried with backoff."""
    restore_backoff_s: tuple[float, float] = (0.5, 30.0)
    """First and longest wait between restore attempts (exponential, with jitter)."""
    read_snapshots: SnapshotReader = read_latest
    generation: Callable[[], int] = lambda: 0
    """The group generation this worker is a member of now; negative once the coordinator dropped it."""
    owned_generation: int = 0
    """The generation of the latest assignment: snapshots are stamped with it, and written only while it is live."""
    not_ready: set[int] = field(default_factory=set)
    """Assigned partitions whose state is not restored yet: none of their ticks is processed meanwhile."""
    restore_failures: int = 0
    refused_total: Counter[str] = field(default_factory=Counter)
    fenced_checkpoints: int = 0
    symbols_evicted: int = 0
    tombstones_written: int = 0
    progress: dict[int, PartitionProgress] = field(default_factory=dict)
    ready: dict[int, asyncio.Event] = field(default_factory=dict)
    replay_horizon: dict[int, int] = field(default_factory=dict)
    """Per partition, the newest offset any restored state has already applied: replays up to it may be skipped."""
    last_restore: RestoreReport | None = None
    snapshots_written: int = 0
    snapshot_bytes: int = 0
    checkpoint_seconds: float = 0.0
    checkpoints: int = 0
    replayed_skipped: int = 0
    rewinds: int = 0
    """Partitions re-read from their last checkpoint because an output of their ticks was refused."""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _background: asyncio.Task[None] | None = None
    _restores: set[asyncio.Task[None]] = field(default_factory=set)

    async def on_assigned(self, partitions: set[int]) -> None:
        """Start loading the snapshots of newly assigned partitions; their ticks wait until it is done.

        Returns at once: a restore that fails is retried in the background (with backoff, for as
        long as the partitions stay assigned) and must not hold up the group's rebalance or crash
        the worker. :meth:`restored` waits for it.
        """
        self.owned_generation = self.generation()
        new = sorted(partitions - set(self.progress))
        for partition in new:
            self.ready[partition] = asyncio.Event()
            self.progress[partition] = PartitionProgress(started_at=time.monotonic())
        if not new:
            return
        self.not_ready.update(new)
        events = {partition: self.ready[partition] for partition in new}
        task = asyncio.get_running_loop().create_task(self._restore(events))
        self._restores.add(task)
        task.add_done_callback(self._restores.discard)
        task.add_done_callback(_log_failure)

    async def restored(self) -> None:
        """Wait until every restore started so far has finished (loaded, or its partitions revoked)."""
        while self._restores:
            await asyncio.gather(*self._restores, return_exceptions=True)

    def _still_assigned(self, events: dict[int, asyncio.Event]) -> list[int]:
        # Revoked (and perhaps assigned again, with a new event) partitions are someone else's business now.
        return [partition for partition, event in events.items() if self.ready.get(partition) is event]

    async def _restore(self, events: dict[int, asyncio.Event]) -> None:
        await retry_restore(
            lambda: self._restore_once(events), lambda: bool(self._still_assigned(events)),
            self.restore_backoff_s, self._restore_failed,
        )  # fmt: skip
        for partition in self._still_assigned(events):
            self.not_ready.discard(partition)
            events[partition].set()

    def _restore_failed(self, retry_state: RetryCallState) -> None:
        self.restore_failures += 1
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
                None, self.read_snapshots, self.bootstrap_servers, self.snapshots_topic, partitions,
                self.restore_timeout_s, self.codec.rank,
            )  # fmt: skip
            snapshots = await loop.run_in_executor(None, verified_snapshots, self.codec, raw, report)
            # Revoked while reading: only what is still ours is loaded.
            partitions = self._still_assigned(events)
            self._drop(partitions)
            ours = sorted((s for s in snapshots if s.state.partition in partitions), key=lambda s: s.created_at)
            # A flood handed over: the most recently saved fit under the cap, the rest start fresh if they return.
            skipped = max(0, len(ours) - (self.eviction.max_symbols - len(self.forecaster.states)))
            self.symbols_evicted += skipped
            for snapshot in ours[skipped:]:
                state = snapshot.state
                state.restored_from(snapshot.applied_offset, snapshot.generation)
                self.forecaster.states[snapshot.symbol] = state
                horizon = self.replay_horizon.get(state.partition, -1)
                self.replay_horizon[state.partition] = max(horizon, state.applied_offset)
                report.restored += 1
        report.seconds = time.perf_counter() - started
        self.last_restore = report
        self.refused_total.update(report.refused)
        log.info(
            "state_restored", partitions=partitions, symbols=report.restored, refused=dict(report.refused),
            seconds=round(report.seconds, 4),
        )  # fmt: skip

    async def wait_ready(self, partition: int) -> bool:
        """Wait until the partition's state is restored; False if this worker does not own the partition."""
        event = self.ready.get(partition)
        if event is None:
            return False
        if not event.is_set():
            await event.wait()
        return partition in self.progress

    def already_applied(self, symbol: str, partition: int, offset: int) -> bool:
        """True for a replayed tick whose effect is already in the restored state (its prediction went out)."""
        state = self.forecaster.states.get(symbol)
        if state is not None and state.partition == partition and offset <= state.applied_offset:
            self.replayed_skipped += 1
            return True
        return False

    def after_batch(self, partition: int, symbols: Iterable[str], last_offset: int, ticks: int) -> None:
        """Note processed ticks; their offset is committed at the partition's next checkpoint."""
        progress = self.progress.get(partition)
        if progress is not None:  # None: the partition was revoked meanwhile, and its next owner re-reads them
            progress.record(symbols, last_offset, ticks)

    def checkpoint_soon(self) -> None:
        """Start checkpointing the due partitions beside the caller, unless a checkpoint is already running.

        The batch loop goes on meanwhile: whatever it processes belongs to the next checkpoint.
        """
        if self._background is not None and not self._background.done():
            return
        now = time.monotonic()
        due = [partition for partition, progress in self.progress.items() if progress.due(self.policy, now)]
        if due:
            self._background = asyncio.get_running_loop().create_task(self.checkpoint(due))
            self._background.add_done_callback(_log_failure)

    async def checkpoint_due(self) -> None:
        """Checkpoint every partition whose time or tick count is up, together."""
        now = time.monotonic()
        due = [partition for partition, progress in self.progress.items() if progress.due(self.policy, now)]
        if due:
            await self.checkpoint(due)

    async def checkpoint(self, partitions: Iterable[int], handing_over: bool = False) -> None:
        """Snapshot what changed in ``partitions``, deliver it after their predictions, then commit their offsets.

        A partition with a refused output is never committed past it: it is rewound to its last
        checkpoint, or, when ``handing_over`` (revocation, shutdown), left to its next owner.
        """
        async with self._lock:
            started = time.perf_counter()
            now = time.monotonic()
            # The cut: state, changed symbols and offsets as of now. Ticks processed while this
            # checkpoint waits for deliveries belong to the next one.
            cut: dict[int, PartitionProgress] = {}
            for partition in partitions:
                progress = self.progress.get(partition)
                if progress is not None and progress.pending:
                    cut[partition] = progress.take(now)
            if not cut:
                return
            if self.fenced():
                # The group moved on without us (we stalled past the session timeout): a new owner may
                # already have written newer state, which our snapshots must not overwrite.
                self.fenced_checkpoints += 1
                log.warning("checkpoint_fenced", partitions=sorted(cut), generation=self.owned_generation,
                            live_generation=self.generation())  # fmt: skip
                return
            created_at = time.time_ns() // 1_000_000
            snapshots = [item for p, taken in cut.items() for item in self._encode(p, taken.dirty, created_at)]
            try:
                # Predictions first: a snapshot must never claim a tick whose prediction could still be lost.
                await self.output.flush()
                for partition, symbol, value in snapshots:
                    key = symbol.encode("utf-8")
                    await self.output.put(self.snapshots_topic, key, value, partition=partition, source=partition)
                if snapshots:
                    await self.output.flush()
            except DeliveryFailed as exc:
                # Keep the offsets uncommitted: whoever owns the partition next replays those ticks.
                log.error("checkpoint_failed", partitions=sorted(cut), error=str(exc))
                refused = set(exc.partitions)
                for partition, taken in cut.items():
                    if partition in self.progress and partition not in refused:
                        self.progress[partition].merge(taken)
                self._after_refusal(refused, handing_over)
                return
            self.snapshots_written += len(snapshots)
            offsets = {partition: taken.commit_offset for partition, taken in cut.items() if taken.commit_offset}
            if not await self.commit(offsets):
                # Revoked meanwhile, or the group moved on: the next owner replays from the last commit
                # and skips what the snapshots already hold.
                log.info("checkpoint_not_committed", partitions=sorted(offsets))
            self.checkpoints += 1
            self.checkpoint_seconds += time.perf_counter() - started

    def _after_refusal(self, refused: set[int], handing_over: bool) -> None:
        """Rewind the partitions with a refused output that this worker keeps; hand the others over unsaved.

        Their in-memory state has learned from ticks whose answers were lost, and their progress
        would commit past them, so both go (:meth:`stop`); the consumer re-reads them from the last
        commit, and :meth:`on_assigned` restores their snapshots first, as for a new owner.
        """
        self.output.forget(refused)
        owned = self.stop(refused)
        if not owned:
            return
        reason = "outputs of their ticks were refused"
        if handing_over:
            log.error("partitions_handed_over_unsaved", partitions=sorted(owned),
                      reason=f"{reason}; the next owner re-reads them from the last commit")  # fmt: skip
            return
        self.rewinds += len(owned)
        log.error("partitions_rewound", partitions=sorted(owned),
                  reason=f"{reason}; re-reading them from the last checkpoint")  # fmt: skip
        self.rewind(owned)

    def stop(self, partitions: Iterable[int]) -> set[int]:
        """Stop processing and committing those of ``partitions`` this worker owns; forget their state.

        Nothing more is committed for them: whoever reads them next (a rewind, a new owner) starts
        from the last commit. Returns the partitions stopped.
        """
        owned = set(partitions) & set(self.progress)
        self._drop(owned)
        for partition in owned:
            self.progress.pop(partition, None)
            self.ready.pop(partition, None)
            self.replay_horizon.pop(partition, None)
        return owned

    def _encode(self, partition: int, symbols: set[str], created_at: int) -> list[tuple[int, str, bytes]]:
        if self.codec is None:
            return []
        encoded = []
        for symbol in sorted(symbols):
            state = self.forecaster.states.get(symbol)
            if state is None:
                continue
            value = self.codec.encode(symbol, state, created_at, generation=self.owned_generation)
            self.snapshot_bytes += len(value)
            encoded.append((partition, symbol, value))
        return encoded

    async def evict_if_over_cap(self) -> None:
        """Forget the least recently seen symbols once this worker holds more than the cap.

        Predictions first, then each victim's final snapshot (or a tombstone when it was idle beyond
        the TTL), and only once those are delivered is the state dropped: a snapshot never claims a
        tick whose prediction could be lost, and no state is dropped unsaved.
        """
        if self.codec is None:  # snapshots are off: state is never saved, so eviction only drops it
            self._forget(self.eviction.victims(self.forecaster.states))
            return
        if not self.eviction.over(len(self.forecaster.states)):
            return
        async with self._lock:
            victims = self.eviction.victims(self.forecaster.states)
            if not victims or self.fenced():
                return
            now_us = time.time_ns() // 1000
            created_at = now_us // 1000
            tombstones = 0
            try:
                await self.output.flush()
                for symbol in victims:
                    state = self.forecaster.states[symbol]
                    value = None
                    if not self.eviction.for_good(state, now_us):
                        value = self.codec.encode(symbol, state, created_at, generation=self.owned_generation)
                    else:
                        tombstones += 1
                    await self.output.put(
                        self.snapshots_topic,
                        symbol.encode("utf-8"),
                        value,
                        partition=state.partition,
                        source=state.partition,
                    )
                await self.output.flush()
            except DeliveryFailed as exc:
                # Nothing is dropped unsaved: the next batch tries again.
                log.error("eviction_failed", symbols=len(victims), error=str(exc))
                return
            self._forget(victims)
            self.tombstones_written += tombstones
            log.info("symbols_evicted", symbols=len(victims), tombstones=tombstones,
                     remaining=len(self.forecaster.states), max_symbols=self.eviction.max_symbols)  # fmt: skip

    def _forget(self, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            state = self.forecaster.states.pop(symbol, None)
            if state is None:
                continue
            self.symbols_evicted += 1
            progress = self.progress.get(state.partition)
            if progress is not None:
                progress.dirty.discard(symbol)  # its final snapshot is written already

    def health(self) -> StateHealth:
        """What the metrics report about restores, refusals, fencing and eviction."""
        return StateHealth(
            partitions_not_ready=len(self.not_ready),
            restore_failures=self.restore_failures,
            snapshots_refused=dict(self.refused_total),
            checkpoints_fenced=self.fenced_checkpoints,
            symbols_evicted=self.symbols_evicted,
        )

    def fenced(self) -> bool:
        """True once this worker may no longer write state: it is not a member of its assignment's generation."""
        live = self.generation()
        return live < 0 or live != self.owned_generation

    async def on_revoked(self, partitions: set[int]) -> None:
        """Checkpoint what we hand over, then forget it: the next owner restores from the snapshots."""
        # A not-ready partition has nothing of ours to save (its ticks were never processed).
        await self.checkpoint(
            sorted(p for p in partitions if p in self.progress and p not in self.not_ready), handing_over=True
        )
        self._drop(partitions)
        for partition in partitions:
            self.progress.pop(partition, None)
            event = self.ready.pop(partition, None)
            if event is not None:
                event.set()  # wakes a batch waiting for this partition's restore: wait_ready then says False
            self.not_ready.discard(partition)
            self.replay_horizon.pop(partition, None)

    def _drop(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for symbol in [s for s, state in self.forecaster.states.items() if state.partition in gone]:
            del self.forecaster.states[symbol]
