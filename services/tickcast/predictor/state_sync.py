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

from tickcast.common.security import KafkaClientSettings
from tickcast.predictor.checkpoints import CheckpointPolicy, PartitionProgress
from tickcast.predictor.eviction import EvictionPolicy
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.metrics import StateHealth
from tickcast.predictor.output import DELIVERY_POLL_S, DeliveryFailed, OutputProducer
from tickcast.predictor.readiness import PartitionReadiness
from tickcast.predictor.restore import RestoreReport, SnapshotReader, read_latest
from tickcast.predictor.snapshot_writer import SnapshotWriter
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
    kafka: KafkaClientSettings
    snapshots_topic: str
    output: OutputProducer
    commit: Callable[[dict[int, int]], Awaitable[bool]]
    policy: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    eviction: EvictionPolicy = field(default_factory=lambda: EvictionPolicy(max_symbols=20_000, ttl_s=604_800.0))
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
    fenced_checkpoints: int = 0
    progress: dict[int, PartitionProgress] = field(default_factory=dict)
    checkpoint_seconds: float = 0.0
    checkpoints: int = 0
    replayed_skipped: int = 0
    rewinds: int = 0
    """Partitions re-read from their last checkpoint because an output of their ticks was refused."""
    ticks_awaiting_room: int = 0
    """Ticks the state has learned whose outcome waits for room in the output queue (the batch loop keeps it)."""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _background: asyncio.Task[None] | None = None
    _evicted: int = 0
    writer: SnapshotWriter | None = field(init=False, default=None)
    """Writes snapshots and tombstones; None when snapshots are off (no key)."""
    readiness: PartitionReadiness = field(init=False)
    """Restores newly assigned partitions; their ticks wait until it is done."""

    def __post_init__(self) -> None:
        if self.codec is not None:
            self.writer = SnapshotWriter(self.codec, self.output, self.snapshots_topic)
        self.readiness = PartitionReadiness(
            self.forecaster, self.codec, self.kafka, self.snapshots_topic,
            room=lambda: self.eviction.max_symbols - len(self.forecaster.states),
            timeout_s=self.restore_timeout_s, backoff_s=self.restore_backoff_s, read_snapshots=self.read_snapshots,
        )  # fmt: skip

    # What the readiness knows, as the worker's stats and tests read it.
    @property
    def ready(self) -> dict[int, asyncio.Event]:
        return self.readiness.ready

    @property
    def not_ready(self) -> set[int]:
        """Assigned partitions whose state is not restored yet: none of their ticks is processed meanwhile."""
        return self.readiness.not_ready

    @property
    def replay_horizon(self) -> dict[int, int]:
        return self.readiness.replay_horizon

    @property
    def restore_failures(self) -> int:
        return self.readiness.failures

    @property
    def refused_total(self) -> Counter[str]:
        return self.readiness.refused_total

    @property
    def last_restore(self) -> RestoreReport | None:
        return self.readiness.last_report

    @property
    def symbols_evicted(self) -> int:
        """Symbols dropped by eviction, plus snapshots a restore skipped because the cap was reached."""
        return self._evicted + self.readiness.skipped

    @property
    def snapshots_written(self) -> int:
        return self.writer.written if self.writer else 0

    @property
    def tombstones_written(self) -> int:
        return self.writer.tombstones if self.writer else 0

    async def on_assigned(self, partitions: set[int]) -> None:
        """Start loading the snapshots of newly assigned partitions; their ticks wait until it is done.

        Returns at once: a restore that fails is retried in the background (with backoff, for as
        long as the partitions stay assigned) and must not hold up the group's rebalance or crash
        the worker. :meth:`restored` waits for it.
        """
        self.owned_generation = self.generation()
        new = sorted(partitions - set(self.progress))
        for partition in new:
            self.progress[partition] = PartitionProgress(started_at=time.monotonic())
        self.readiness.start(new)

    async def restored(self) -> None:
        """Wait until every restore started so far has finished (loaded, or its partitions revoked)."""
        await self.readiness.finished()

    async def wait_ready(self, partition: int) -> bool:
        """Wait until the partition's state is restored; False if this worker does not own the partition."""
        return await self.readiness.wait_ready(partition) and partition in self.progress

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
            # The cut: changed symbols and offsets as of now. Ticks processed while this checkpoint
            # encodes (between slices) or waits for deliveries are committed by the next one; a snapshot
            # encoded after them may already hold them, which replay after a failover recognises.
            cut: dict[int, PartitionProgress] = {}
            owners: dict[int, PartitionProgress] = {}
            for partition in partitions:
                progress = self.progress.get(partition)
                if progress is not None and progress.pending:
                    cut[partition], owners[partition] = progress.take(now), progress
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
            writer, states, generation = self.writer, self.forecaster.states, self.owned_generation
            snapshots = (
                await writer.encode_in_slices(
                    [(p, taken.dirty) for p, taken in cut.items()], states, created_at, generation, self.no_tick_unsent
                )
                if writer
                else []
            )
            try:
                if writer is not None:
                    await writer.deliver(snapshots)
                else:
                    await self.output.flush()  # offsets are committed only after their predictions are delivered
            except DeliveryFailed as exc:
                # Keep the offsets uncommitted: whoever owns the partition next replays those ticks.
                log.error("checkpoint_failed", partitions=sorted(cut), error=str(exc))
                refused = set(exc.partitions)
                for partition, taken in cut.items():
                    if partition in self.progress and partition not in refused:
                        self.progress[partition].merge(taken)
                self._after_refusal(refused, handing_over)
                return
            # A partition stopped while this encoded (halted by the batch loop between slices) lost the states not
            # encoded yet: committing its cut would skip their ticks for good. Its next reader replays them.
            offsets = {
                partition: taken.commit_offset
                for partition, taken in cut.items()
                if taken.commit_offset and self.progress.get(partition) is owners[partition]
            }
            if offsets and not await self.commit(offsets):
                # Revoked meanwhile, or the group moved on: the next owner replays from the last commit
                # and skips what the snapshots already hold.
                log.info("checkpoint_not_committed", partitions=sorted(offsets))
            self.checkpoints += 1
            self.checkpoint_seconds += time.perf_counter() - started

    async def no_tick_unsent(self) -> None:
        """Return once no learned tick waits to hand its outcome to the producer (a snapshot may then be encoded)."""
        while self.ticks_awaiting_room:
            await asyncio.sleep(DELIVERY_POLL_S)

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
        self.readiness.forget(owned)
        return owned

    async def evict_if_over_cap(self) -> None:
        """Forget the least recently seen symbols once this worker holds more than the cap.

        Predictions first, then each victim's final snapshot (or a tombstone when it was idle beyond
        the TTL), and only once those are delivered is the state dropped: a snapshot never claims a
        tick whose prediction could be lost, and no state is dropped unsaved.
        """
        writer = self.writer
        if writer is None:  # snapshots are off: state is never saved, so eviction only drops it
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
            states = self.forecaster.states
            records = [
                (
                    states[symbol].partition,
                    symbol,
                    None
                    if self.eviction.for_good(states[symbol], now_us)
                    else writer.encode(symbol, states[symbol], created_at, self.owned_generation),
                )
                for symbol in victims
            ]
            try:
                await writer.deliver(records)
            except DeliveryFailed as exc:
                # Nothing is dropped unsaved: the next batch tries again.
                log.error("eviction_failed", symbols=len(victims), error=str(exc))
                return
            self._forget(victims)
            tombstones = sum(1 for _, _, value in records if value is None)
            log.info("symbols_evicted", symbols=len(victims), tombstones=tombstones,
                     remaining=len(self.forecaster.states), max_symbols=self.eviction.max_symbols)  # fmt: skip

    def _forget(self, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            state = self.forecaster.states.pop(symbol, None)
            if state is None:
                continue
            self._evicted += 1
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
        self.readiness.forget(partitions)

    def _drop(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for symbol in [s for s, state in self.forecaster.states.items() if state.partition in gone]:
            del self.forecaster.states[symbol]
