"""Reading a partition's symbol snapshots back, the most current one per symbol (retried by readiness.py).

Two rules make restore safe against stalled writers and a slow broker:

- **Most current, not last written.** A worker that stalled past its session timeout (a zombie)
  can write after the partition's new owner. Per symbol, restore keeps the signed snapshot of the
  newest group generation, then the newest applied offset (:class:`~tickcast.predictor.snapshots.Rank`),
  so a late stale write never rolls a symbol back.
- **Never crash, never guess.** A read that fails or times out is retried with exponential backoff
  for as long as the partition is assigned; until it succeeds the partition is *not ready*: none of
  its ticks is processed or committed (the batch loop waits), and ``/stats``, the
  ``tickcast_partitions_not_ready`` gauge and a ``state_restore_failed`` log line say so.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
from tenacity import AsyncRetrying, RetryCallState, wait_exponential, wait_random

from tickcast.common.kafka import new_consumer
from tickcast.common.security import KafkaClientSettings
from tickcast.predictor.snapshots import Rank, Snapshot, SnapshotCodec, SnapshotRefused

log = structlog.get_logger("tickcast.predictor")

RankOf = Callable[[bytes, bytes], Rank | None]
"""How current a snapshot value found under a key is (None: unverifiable or misplaced, kept only while nothing
verifiable is known)."""


class SnapshotReader(Protocol):
    """Reads the most current snapshot value per key of some partitions (see :func:`read_latest`)."""

    def __call__(
        self, kafka: KafkaClientSettings, topic: str, partitions: Iterable[int], timeout_s: float, rank: RankOf | None
    ) -> dict[int, dict[bytes, bytes]]: ...


def keep_most_current(
    latest: dict[bytes, bytes], ranks: dict[bytes, Rank | None], key: bytes, value: bytes | None, rank: RankOf | None
) -> None:
    """Fold one record of a snapshots partition into the per-key choice (records come in offset order).

    A tombstone (``None``) forgets the key's value: the symbol was evicted for good. Its rank stays,
    as a floor: a genuine snapshot written after the tombstone that is not newer than the tombstoned one
    (a replay, of it or of an older one) must not bring back older state; a symbol that really comes back
    is snapshotted at later offsets. Without
    ``rank`` the last value wins, as compaction would have it.

    >>> latest, ranks = {}, {}
    >>> by_first_byte = lambda value, key: Rank(value[0], 0)
    >>> for value in (b"\\x05new", b"\\x04zombie"):
    ...     keep_most_current(latest, ranks, b"SPY", value, by_first_byte)
    >>> latest
    {b'SPY': b'\\x05new'}
    >>> keep_most_current(latest, ranks, b"SPY", None, by_first_byte); latest
    {}
    >>> keep_most_current(latest, ranks, b"SPY", b"\\x04replayed", by_first_byte); latest
    {}
    """
    if value is None:
        latest.pop(key, None)
        floor = ranks.get(key)
        if floor is not None:
            # Exclusive: the tombstoned snapshot itself, replayed, is no newer than what was forgotten (the symbol's
            # next genuine snapshot is of a later applied offset, or of a newer generation).
            ranks[key] = Rank(floor.generation, floor.applied_offset + 1)
        return
    if rank is None:
        latest[key] = value
        return
    new = rank(value, key)
    old = ranks.get(key)
    if new is None:
        # An untrusted value never displaces a trusted one (it is kept only to be counted as refused).
        if key not in latest or old is None:
            latest[key] = value
        return
    if old is not None and new < old:  # equal ranks: the later write wins
        return
    latest[key] = value
    ranks[key] = new


def read_latest(
    kafka: KafkaClientSettings, topic: str, partitions: Iterable[int], timeout_s: float, rank: RankOf | None = None
) -> dict[int, dict[bytes, bytes]]:
    """The most current value per key in each partition of ``topic`` (reads each partition to its end)."""
    wanted = sorted(set(partitions))
    latest: dict[int, dict[bytes, bytes]] = {p: {} for p in wanted}
    ranks: dict[int, dict[bytes, Rank | None]] = {p: {} for p in wanted}
    if not wanted:
        return latest
    consumer = new_consumer(
        kafka,
        f"tickcast-restore-{uuid.uuid4().hex[:12]}",
        **{"enable.auto.commit": False, "enable.partition.eof": True},
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
                key = message.key()
                if key is not None and partition in latest:
                    keep_most_current(latest[partition], ranks[partition], key, message.value(), rank)
        return latest
    finally:
        consumer.close()


@dataclass(slots=True)
class RestoreReport:
    """What one restore of a set of partitions found."""

    partitions: list[int]
    restored: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def verified_snapshots(
    codec: SnapshotCodec, raw: dict[int, dict[bytes, bytes]], report: RestoreReport
) -> list[Snapshot]:
    """The snapshots among ``raw`` (partition -> key -> value) that verify; each refusal is counted and logged."""
    snapshots = []
    for partition, records in raw.items():
        for key, value in records.items():
            try:
                snapshot = codec.decode(value, key=key)
            except SnapshotRefused as refused:
                report.refused[refused.reason.value] += 1
                log.error("snapshot_refused", reason=refused.reason.value, detail=refused.message,
                          partition=partition, key=key.decode("utf-8", "replace"))  # fmt: skip
                continue
            snapshots.append(snapshot)
    return snapshots


async def retry_restore(
    attempt: Callable[[], Awaitable[None]],
    still_wanted: Callable[[], bool],
    backoff_s: tuple[float, float],
    on_failure: Callable[[RetryCallState], None],
) -> None:
    """Run ``attempt`` until it succeeds, with exponential backoff (first, longest) and jitter between tries.

    A try is skipped (and counts as success) once ``still_wanted`` is false: the partitions were revoked.
    ``on_failure`` hears of every failed try before the wait; nothing here gives up on its own.
    """
    first, longest = backoff_s
    retrying = AsyncRetrying(
        wait=wait_exponential(multiplier=first, max=longest) + wait_random(0, first),
        before_sleep=on_failure,
        reraise=True,
    )
    async for try_ in retrying:
        with try_:
            if still_wanted():
                await attempt()
