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
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from tickcast.common.kafka import QUIET
from tickcast.predictor.checkpoints import CheckpointPolicy, PartitionProgress
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.output import DeliveryFailed, OutputProducer
from tickcast.predictor.snapshots import Snapshot, SnapshotCodec, SnapshotRefused

log = structlog.get_logger("tickcast.predictor")


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("checkpoint_crashed", error=repr(task.exception()))


def read_latest(
    bootstrap_servers: str, topic: str, partitions: Iterable[int], timeout_s: float
) -> dict[int, dict[bytes, bytes]]:
    """The newest value per key in each partition of ``topic`` (reads each partition to its end)."""
    wanted = sorted(set(partitions))
    latest: dict[int, dict[bytes, bytes]] = {p: {} for p in wanted}
    if not wanted:
        return latest
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"tickcast-restore-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            **QUIET,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in wanted])
        pending = set(wanted)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"restoring state: partitions {sorted(pending)} of {topic!r} not read within {timeout_s}s"
                )
            for message in consumer.consume(num_messages=1000, timeout=0.2):
                error = message.error()
                partition = message.partition() or 0
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(partition)
                        continue
                    raise RuntimeError(f"restoring state from {topic!r} failed: {error}")
                key, value = message.key(), message.value()
                if key is not None and value is not None:
                    latest[partition][key] = value
        return latest
    finally:
        consumer.close()


@dataclass(slots=True)
class RestoreReport:
    partitions: list[int]
    restored: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


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
    rewind: Callable[[set[int]], None] = lambda partitions: None
    """Have the consumer re-read ``partitions`` from their committed offsets, then call :meth:`on_assigned`."""
    restore_timeout_s: float = 60.0
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

    async def on_assigned(self, partitions: set[int]) -> RestoreReport:
        """Load the snapshots of newly assigned partitions before any of their ticks is processed."""
        new = sorted(partitions - set(self.progress))
        for partition in new:
            self.ready[partition] = asyncio.Event()
            self.progress[partition] = PartitionProgress(started_at=time.monotonic())
        report = RestoreReport(new)
        started = time.perf_counter()
        try:
            if self.codec is not None and new:
                loop = asyncio.get_running_loop()
                raw = await loop.run_in_executor(
                    None, read_latest, self.bootstrap_servers, self.snapshots_topic, new, self.restore_timeout_s
                )
                snapshots = await loop.run_in_executor(None, self._verify, raw, report)
                self._drop(new)
                for snapshot in snapshots:
                    state = snapshot.state
                    self.forecaster.states[snapshot.symbol] = state
                    horizon = self.replay_horizon.get(state.partition, -1)
                    self.replay_horizon[state.partition] = max(horizon, state.applied_offset)
                report.restored = len(snapshots)
        finally:
            report.seconds = time.perf_counter() - started
            for partition in new:
                self.ready[partition].set()
        self.last_restore = report
        log.info(
            "state_restored", partitions=new, symbols=report.restored, refused=dict(report.refused),
            seconds=round(report.seconds, 4),
        )  # fmt: skip
        return report

    def _verify(self, raw: dict[int, dict[bytes, bytes]], report: RestoreReport) -> list[Snapshot]:
        assert self.codec is not None
        snapshots = []
        for partition, records in raw.items():
            for key, value in records.items():
                try:
                    snapshot = self.codec.decode(value)
                except SnapshotRefused as refused:
                    report.refused[refused.reason.value] += 1
                    log.error("snapshot_refused", reason=refused.reason.value, detail=refused.message,
                              partition=partition, key=key.decode("utf-8", "replace"))  # fmt: skip
                    continue
                snapshots.append(snapshot)
        return snapshots

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
            value = self.codec.encode(symbol, state, created_at)
            self.snapshot_bytes += len(value)
            encoded.append((partition, symbol, value))
        return encoded

    async def on_revoked(self, partitions: set[int]) -> None:
        """Checkpoint what we hand over, then forget it: the next owner restores from the snapshots."""
        await self.checkpoint(sorted(p for p in partitions if p in self.progress), handing_over=True)
        self._drop(partitions)
        for partition in partitions:
            self.progress.pop(partition, None)
            self.ready.pop(partition, None)
            self.replay_horizon.pop(partition, None)

    def _drop(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for symbol in [s for s, state in self.forecaster.states.items() if state.partition in gone]:
            del self.forecaster.states[symbol]
