from __future__ import annotations

import dataclasses
import math

from hypothesis import given
from hypothesis import strategies as st

from tickcast.common.records import HorizonForecast, Prediction
from tickcast.gateway.cache import LatestCache, PartitionRing, Published, first_non_finite


def item(partition: int, offset: int, symbol: str = "A") -> Published:
    return Published(partition, offset, symbol, 0.0, 0.0, "{}")


def test_the_cache_never_holds_more_than_its_bound_and_keeps_the_most_recently_updated() -> None:
    cache = LatestCache(max_symbols=100)
    for offset in range(1_000):
        cache.put(item(0, offset, f"S{offset % 300}"))
    assert len(cache) == 100
    assert {p.symbol for p in cache.symbols()} == {f"S{n % 300}" for n in range(900, 1_000)}
    assert cache.evicted == 900  # each symbol comes back after 300 others, long after it was evicted


def test_an_older_prediction_never_replaces_a_newer_one() -> None:
    cache = LatestCache(max_symbols=10)
    assert cache.put(item(2, 50))
    assert not cache.put(item(2, 49))
    assert cache.get("A") is not None and cache.get("A").offset == 50  # type: ignore[union-attr]


def test_a_ring_knows_which_positions_it_can_still_resume_from() -> None:
    ring = PartitionRing(size=3)
    ring.start(100)
    assert ring.covers(99) and not ring.covers(98)
    for offset in range(100, 110):
        ring.append(item(0, offset))
    assert (ring.floor, ring.head) == (107, 109)
    assert [p.offset for p in ring.after(106)] == [107, 108, 109]
    assert not ring.covers(105)
    ring.append(item(0, 108))  # a re-read is ignored
    assert ring.head == 109


@given(
    horizons=st.integers(min_value=0, max_value=3),
    where=st.integers(min_value=0, max_value=10_000),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_every_non_finite_double_of_a_prediction_is_found_by_its_path(horizons: int, where: int, bad: float) -> None:
    # A NaN or an infinity has no JSON form; serving it as null broke the served shape (no such field is
    # nullable), and json.dumps(allow_nan=False) raising on it had stopped the source thread for good.
    forecasts = [
        HorizonForecast(f"{n + 1}t", 0, n + 1, None, 0.5, 2.0001, True, 3, -1.0, 2.0, 0.9, 0.88, 0.2)
        for n in range(horizons)
    ]
    prediction = Prediction("SPY", 1, 2.0, 0.5, 2.0001, 1, "READY", "m", "1", 3, "t", 0, 9, 1, 2_000, "w")
    record = dataclasses.replace(prediction, abs_error_ewm_bps=0.1, forecasts=forecasts).to_avro()
    assert first_non_finite(record) is None
    doubles = [(None, name) for name, value in record.items() if type(value) is float] + [
        (index, name) for index, item in enumerate(record.get("forecasts", [])) for name, value in item.items()
        if type(value) is float
    ]  # fmt: skip
    index, name = doubles[where % len(doubles)]
    if index is None:
        record[name] = bad
        assert first_non_finite(record) == name
    else:
        record["forecasts"][index][name] = bad
        assert first_non_finite(record) == f"forecasts[{index}].{name}"


def test_the_first_record_at_the_start_offset_is_kept_and_a_repeat_of_the_head_is_not() -> None:
    ring = PartitionRing(size=5)
    ring.start(100)  # the source reached the end of the partition at 100: the next record is offset 100
    ring.append(item(0, 100))
    assert [p.offset for p in ring.after(99)] == [100], "the record at the offset the ring started from is missing"
    ring.append(item(0, 100))  # read again (a reconnect at the same offset)
    assert [p.offset for p in ring.after(99)] == [100], "a re-read of the newest record is in the ring twice"


def test_a_ring_first_read_mid_partition_does_not_claim_the_offsets_before_it() -> None:
    # The source began reading at offset 1000 (records before it are not in this gateway): a client resuming
    # from offset 5 must be told it missed records, not be replayed from 1000 as if nothing were lost.
    ring = PartitionRing(size=5)
    ring.append(item(0, 1000))
    assert (ring.floor, ring.first) == (1000, 1000), "the ring claims offsets it never read"
    assert not ring.covers(5)
