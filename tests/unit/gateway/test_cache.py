from __future__ import annotations

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
