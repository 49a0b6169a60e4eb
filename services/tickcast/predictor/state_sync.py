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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from tickcast.common.kafka import QUIET
from tickcast.predictor.checkpoints import CheckpointPolicy, PartitionProgress
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.output import DeliveryFailed, OutputProducer
from tickcast.predictor.snapshots import Snapshot, SnapshotCodec, SnapshotRefused

log = structlog.get_logger("tickcast.predictor")


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
    """Owns the per-partition checkpoint cycle of one worker."""

    forecaster: Forecaster
    codec: SnapshotCodec | None
    bootstrap_servers: str
    snapshots_topic: str
    output: OutputProducer
    policy: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    restore_timeout_s: float = 60.0
    progress: dict[int, PartitionProgress] = field(default_factory=dict)
    ready: dict[int, asyncio.Event] = field(default_factory=dict)
    last_restore: RestoreReport | None = None
    snapshots_written: int = 0
    snapshot_bytes: int = 0
    checkpoint_seconds: float = 0.0
    replayed_skipped: int = 0

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
                    self.forecaster.states[snapshot.symbol] = snapshot.state
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

    async def wait_ready(self, partition: int) -> None:
        event = self.ready.get(partition)
        if event is not None and not event.is_set():
            await event.wait()

    def already_applied(self, symbol: str, partition: int, offset: int) -> bool:
        """True for a replayed tick whose effect is already in the restored state (its prediction went out)."""
        state = self.forecaster.states.get(symbol)
        if state is not None and state.partition == partition and offset <= state.applied_offset:
            self.replayed_skipped += 1
            return True
        return False

    async def after_tick(self, partition: int, symbol: str | None, event: Any) -> None:
        """Hold the tick's ack until its partition's next checkpoint; run that checkpoint when due."""
        progress = self.progress.get(partition)
        if progress is None:  # a tick from a partition we no longer own: nothing to keep
            event.ack()
            return
        progress.record(symbol, event)
        if progress.due(self.policy, time.monotonic()):
            await self.checkpoint(partition)

    async def checkpoint_due(self) -> None:
        """Checkpoint partitions whose time is up even though no tick arrived (called by a timer)."""
        now = time.monotonic()
        for partition, progress in list(self.progress.items()):
            if progress.due(self.policy, now):
                await self.checkpoint(partition)

    async def checkpoint(self, partition: int) -> None:
        progress = self.progress.get(partition)
        if progress is None or not progress.held:
            return
        started = time.perf_counter()
        try:
            # Predictions first: a snapshot must never claim a tick whose prediction could still be lost.
            await self.output.flush()
            created_at = time.time_ns() // 1_000_000
            written = self._send_snapshots(partition, progress.dirty, created_at) if self.codec else 0
            if written:
                await self.output.flush()
        except DeliveryFailed as exc:
            # Keep the ticks unacknowledged: whoever owns the partition next replays them.
            log.error("checkpoint_failed", partition=partition, error=str(exc))
            return
        self.snapshots_written += written
        for event in progress.held:
            event.ack()
        progress.reset(time.monotonic())
        self.checkpoint_seconds += time.perf_counter() - started

    def _send_snapshots(self, partition: int, symbols: set[str], created_at: int) -> int:
        assert self.codec is not None
        written = 0
        for symbol in sorted(symbols):
            state = self.forecaster.states.get(symbol)
            if state is None:
                continue
            value = self.codec.encode(symbol, state, created_at)
            self.snapshot_bytes += len(value)
            self.output.send(self.snapshots_topic, symbol.encode("utf-8"), value, partition=partition)
            written += 1
        return written

    async def on_revoked(self, partitions: set[int]) -> None:
        """Checkpoint what we hand over, then forget it: the next owner restores from the snapshots."""
        for partition in sorted(partitions):
            if partition in self.progress:
                await self.checkpoint(partition)
        self._drop(partitions)
        for partition in partitions:
            self.progress.pop(partition, None)
            self.ready.pop(partition, None)

    def _drop(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for symbol in [s for s, state in self.forecaster.states.items() if state.partition in gone]:
            del self.forecaster.states[symbol]
