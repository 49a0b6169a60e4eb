from __future__ import annotations

import json

from tickcast.common.records import Prediction
from tickcast.gateway.cache import LatestCache, PartitionRing, Published


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


def test_a_prediction_with_a_non_finite_double_is_still_served_as_json() -> None:
    # The contract's doubles allow NaN and infinities, JSON does not: refusing them (json.dumps allow_nan=False)
    # raised on the source thread, which then stopped reading the topic for good.
    record = Prediction("SPY", 1, 2.0, 0.5, 2.0001, 1, "READY", "m", "1", 3, "t", 0, 9, 1, 2_000, "w").to_avro()
    record["predicted_return_bps"], record["abs_error_ewm_bps"] = float("nan"), float("inf")
    published = Published.of_record(0, 5, record, 0.0)
    served = json.loads(published.json_head + b"1.0}")
    assert (served["predicted_return_bps"], served["abs_error_ewm_bps"], served["offset"]) == (None, None, 5)
