"""The symbol cap: least recently seen symbols go first, after a final snapshot or, idle for good, a tombstone."""

from __future__ import annotations

import asyncio

from tickcast.common.records import Lineage, Tick
from tickcast.predictor.eviction import EvictionPolicy
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.models import model_spec
from tickcast.predictor.settings import PredictorSettings

from .test_state_sync import PARTITION, Harness, codec


def test_states_are_kept_in_order_of_last_tick() -> None:
    forecaster = Forecaster(model_spec("persistence"), worker="w")
    for offset, symbol in enumerate(["A", "B", "C", "A"]):
        forecaster.process(Tick(symbol, 100.0, 1.0, offset), Lineage("ticks", 0, offset, 0), now_us=offset)
    assert list(forecaster.states) == ["B", "C", "A"]
    assert EvictionPolicy(max_symbols=2, ttl_s=1.0).victims(forecaster.states) == ["B", "C"]


def flooded(symbols: int, max_symbols: int, ttl_s: float = 1e12) -> Harness:
    h = Harness(codec())
    h.keeper.eviction = EvictionPolicy(max_symbols=max_symbols, ttl_s=ttl_s)
    for index in range(symbols):
        h.process(f"S{index:05d}", range(index, index + 1))
    return h


def test_over_the_cap_the_least_recently_seen_leave_a_final_snapshot_and_are_dropped() -> None:
    h = flooded(symbols=12, max_symbols=10)
    asyncio.run(h.keeper.evict_if_over_cap())
    # Down to 90% of the cap: the three oldest go, each after its snapshot is out.
    gone = ["S00000", "S00001", "S00002"]
    assert list(h.forecaster.states) == [f"S{i:05d}" for i in range(3, 12)]
    assert [key.decode() for _, key, _, _ in h.output.sent if key] == gone
    assert [codec().decode(value).applied_offset for _, _, value, _ in h.output.sent if value] == [0, 1, 2]
    assert h.keeper.symbols_evicted == 3 and h.keeper.health().symbols_evicted == 3
    assert not set(gone) & h.keeper.progress[PARTITION].dirty  # not snapshotted again at the next checkpoint


def test_a_symbol_idle_beyond_the_ttl_is_evicted_for_good_with_a_tombstone() -> None:
    # The harness stamps predictions at now_us=offset, i.e. 1970: idle for decades, beyond any TTL.
    h = flooded(symbols=3, max_symbols=2, ttl_s=60.0)
    asyncio.run(h.keeper.evict_if_over_cap())
    assert [(key, value) for _, key, value, _ in h.output.sent] == [(b"S00000", None), (b"S00001", None)]
    assert h.keeper.tombstones_written == 2 and list(h.forecaster.states) == ["S00002"]


def test_a_failed_final_snapshot_drops_nothing() -> None:
    h = flooded(symbols=12, max_symbols=10)
    h.output.fail_next = True
    asyncio.run(h.keeper.evict_if_over_cap())
    assert len(h.forecaster.states) == 12 and h.keeper.symbols_evicted == 0


def test_under_the_cap_nothing_is_written_or_dropped() -> None:
    h = flooded(symbols=10, max_symbols=10)
    asyncio.run(h.keeper.evict_if_over_cap())
    assert len(h.forecaster.states) == 10 and not h.output.sent


def test_by_default_a_symbol_idle_over_a_long_weekend_is_snapshotted_not_forgotten() -> None:
    # The default TTL was 24 h of the worker's clock: a symbol last traded before a weekend and evicted before its
    # Monday open (a worker at its cap as the pre-market flow starts) got a tombstone, its state gone for good.
    settings = PredictorSettings(bootstrap_servers="127.0.0.1:1")
    policy = EvictionPolicy(settings.max_symbols, settings.symbol_ttl_s)
    forecaster = Forecaster(model_spec("persistence"), worker="w")
    thursday_close = 1_776_369_600_000_000  # 2026-04-16 20:00 UTC, before Good Friday
    forecaster.process(Tick("SPY", 100.0, 1.0, 0), Lineage("ticks", 0, 0, 0), now_us=thursday_close)
    monday_pre_open = thursday_close + (3 * 24 + 12) * 3_600 * 1_000_000  # 2026-04-20 08:00 UTC
    assert not policy.for_good(forecaster.states["SPY"], monday_pre_open), (
        f"idle 84 h over a long weekend, forgotten for good (TTL {policy.ttl_s:.0f} s)"
    )
