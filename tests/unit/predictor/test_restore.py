"""Restore: the most current snapshot per symbol wins, and a failing read is retried, never fatal."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest

from tickcast.common.records import Lineage, Tick
from tickcast.common.security import KafkaClientSettings
from tickcast.predictor.eviction import EvictionPolicy
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.models import model_spec
from tickcast.predictor.restore import RankOf, keep_most_current
from tickcast.predictor.snapshots import Rank, SnapshotCodec
from tickcast.predictor.state_sync import StateKeeper

from .test_state_sync import FakeOutput

PARTITION = 2


def codec() -> SnapshotCodec:
    return SnapshotCodec(b"k", "linear", model_spec("linear").version, worker="w")


def snapshot(ticks: int, generation: int) -> bytes:
    """A signed snapshot of SPY after ``ticks`` ticks on PARTITION (applied offset ticks - 1)."""
    forecaster = Forecaster(model_spec("linear"), worker="w")
    for offset in range(ticks):
        forecaster.process(Tick("SPY", 100.0 + offset % 3, 1.0, offset), Lineage("ticks", PARTITION, offset, 0), 0)
    return codec().encode("SPY", forecaster.states["SPY"], created_at=0, generation=generation)


def choose(values: Iterable[bytes | None]) -> bytes | None:
    latest: dict[bytes, bytes] = {}
    ranks: dict[bytes, Rank | None] = {}
    for value in values:
        keep_most_current(latest, ranks, b"SPY", value, codec().rank)
    return latest.get(b"SPY")


OWNER, ZOMBIE, OLDER_OWNER = snapshot(30, generation=5), snapshot(10, generation=4), snapshot(20, generation=4)


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ([OLDER_OWNER, OWNER, ZOMBIE], OWNER),  # the zombie wrote last, after the new owner: it must not win
        ([ZOMBIE, OLDER_OWNER], OLDER_OWNER),  # same generation: the later applied offset wins
        ([OWNER, b"forged"], OWNER),  # an unverifiable record never displaces a signed one
        ([b"forged"], b"forged"),  # ...but is kept when it is all there is, so restore reports the refusal
        ([OWNER, None], None),  # a tombstone: evicted for good
        # Older than what was tombstoned: a zombie's late write or a replay; the symbol starts fresh.
        ([OWNER, None, ZOMBIE], None),
        ([OWNER, None, OWNER], None),  # the very snapshot tombstoned, replayed after its tombstone
        ([ZOMBIE, None, OWNER], OWNER),  # newer than the tombstoned state: the symbol came back
    ],
)
def test_restore_keeps_the_newest_generation_then_the_newest_offset(
    written: list[bytes | None], kept: bytes | None
) -> None:
    assert choose(written) == kept


def test_a_genuine_snapshot_copied_under_another_key_never_displaces_that_keys_own() -> None:
    # QQQ's snapshot is genuine and of a newer generation, but written under SPY's key (a replay).
    forecaster = Forecaster(model_spec("linear"), worker="w")
    forecaster.process(Tick("QQQ", 100.0, 1.0, 0), Lineage("ticks", PARTITION, 99, 0), 0)
    copied = codec().encode("QQQ", forecaster.states["QQQ"], created_at=0, generation=9)
    assert choose([OWNER, copied]) == OWNER


class FlakyReader:
    """Times out ``failures`` times, then returns ``snapshots`` for PARTITION."""

    def __init__(self, failures: int, snapshots: dict[bytes, bytes]) -> None:
        self.failures = failures
        self.snapshots = snapshots
        self.calls = 0

    def __call__(
        self, kafka: KafkaClientSettings, topic: str, partitions: Iterable[int], timeout_s: float, rank: RankOf | None
    ) -> dict[int, dict[bytes, bytes]]:
        self.calls += 1
        if self.calls <= self.failures:
            raise TimeoutError(f"restoring state: partitions {sorted(partitions)} of {topic!r} not read in time")
        return {PARTITION: dict(self.snapshots)}


def keeper(reader: FlakyReader) -> StateKeeper:
    async def commit(offsets: dict[int, int]) -> bool:
        return True

    return StateKeeper(
        forecaster=Forecaster(model_spec("linear"), worker="w"),
        codec=codec(),
        kafka=KafkaClientSettings(bootstrap_servers="unused:1"),
        snapshots_topic="snapshots",
        output=FakeOutput(),  # type: ignore[arg-type]
        commit=commit,
        restore_backoff_s=(0.01, 0.02),
        read_snapshots=reader,
    )


def test_a_restore_that_times_out_is_retried_and_the_partition_waits_meanwhile() -> None:
    async def scenario() -> tuple[StateKeeper, FlakyReader, list[bool]]:
        reader = FlakyReader(failures=3, snapshots={b"SPY": OWNER})
        k = keeper(reader)
        await k.on_assigned({PARTITION})  # returns at once, whatever the broker does
        seen = [PARTITION in k.not_ready, k.health().partitions_not_ready == 1]
        assert await asyncio.wait_for(k.wait_ready(PARTITION), 5.0)  # the batch loop's wait
        await k.restored()
        seen.append(PARTITION in k.not_ready)
        return k, reader, seen

    k, reader, seen = asyncio.run(scenario())
    assert seen == [True, True, False]
    assert (reader.calls, k.restore_failures, k.health().restore_failures) == (4, 3, 3)
    assert k.forecaster.states["SPY"].ticks_seen == 30 and k.replay_horizon == {PARTITION: 29}


def test_a_partition_revoked_while_its_restore_keeps_failing_stops_retrying_and_releases_its_waiter() -> None:
    async def scenario() -> tuple[StateKeeper, FlakyReader, bool]:
        reader = FlakyReader(failures=10**6, snapshots={})
        k = keeper(reader)
        await k.on_assigned({PARTITION})
        waiter = asyncio.create_task(k.wait_ready(PARTITION))
        deadline = asyncio.get_running_loop().time() + 5.0
        while reader.calls < 2:  # the restore has failed and is retrying
            assert asyncio.get_running_loop().time() < deadline, f"restore attempted {reader.calls} times, not 2"
            await asyncio.sleep(0.01)
        await k.on_revoked({PARTITION})
        owned = await asyncio.wait_for(waiter, 5.0)
        await asyncio.wait_for(k.restored(), 5.0)
        return k, reader, owned

    k, reader, owned = asyncio.run(scenario())
    assert owned is False and not k.not_ready
    calls = reader.calls
    assert calls < 10**6 and k.readiness.restoring == 0


def test_a_restore_over_the_symbol_cap_counts_each_snapshot_it_skips_once() -> None:
    # A worker already over its cap (its eviction failing or fenced) restores a partition: each of its snapshots
    # is skipped, and only those count as evicted; the count took the whole excess of the cap on top of them.
    async def scenario() -> StateKeeper:
        k = keeper(FlakyReader(failures=0, snapshots={b"SPY": OWNER}))
        k.eviction = EvictionPolicy(max_symbols=2, ttl_s=60.0)
        for number, symbol in enumerate(("A", "B", "C", "D", "E")):
            k.forecaster.process(Tick(symbol, 100.0, 1.0, 0), Lineage("ticks", PARTITION + 1, number, 0), 0)
        await k.on_assigned({PARTITION})
        await k.restored()
        return k

    k = asyncio.run(scenario())
    assert "SPY" not in k.forecaster.states
    assert (k.readiness.skipped, k.symbols_evicted) == (1, 1)


def test_restored_symbols_take_their_place_in_the_order_eviction_takes_the_least_recently_seen_from() -> None:
    # SPY's snapshot was last predicted long before this worker's own symbols were; restored after them, it was
    # taken as the most recently seen, and a flood evicted the worker's active symbols (to start fresh) first.
    async def scenario() -> StateKeeper:
        k = keeper(FlakyReader(failures=0, snapshots={b"SPY": OWNER}))
        for number, symbol in enumerate(("A", "B", "C")):
            k.forecaster.process(Tick(symbol, 100.0, 1.0, 0), Lineage("ticks", PARTITION + 1, number, 0), 10**15)
        await k.on_assigned({PARTITION})
        await k.restored()
        return k

    k = asyncio.run(scenario())
    assert list(k.forecaster.states) == ["SPY", "A", "B", "C"]
    assert EvictionPolicy(max_symbols=3, ttl_s=60.0).victims(k.forecaster.states) == ["SPY", "A"]  # down to 2
