"""The replay bound printed beside the rebalance scenario's count of ticks answered twice after a kill -9."""

from __future__ import annotations

from bench.rebalance import replay_bound
from bench.taps import Seen


def at(received_s: float, partition: int, worker: str) -> Seen:
    return Seen(received_s, "S", partition, 0, 0, 0, worker)


def test_the_bound_counts_the_killed_workers_own_partitions_before_the_kill_only() -> None:
    kill_at = 20.0
    seen = [at(15.0 + i / 10, 0, "victim") for i in range(50)]  # 10 a second on partition 0, over the window
    seen += [at(15.0 + i / 20, 1, "victim") for i in range(100)]  # 20 a second on partition 1
    seen += [at(15.0 + i / 100, 2, "survivor") for i in range(500)]  # the survivor's own partition
    seen += [at(kill_at + i / 100, 0, "survivor") for i in range(500)]  # after the kill: the replay itself
    seen += [at(i / 100, 0, "victim") for i in range(1000)]  # long before: its busier single-worker phase
    seen += [at(19.0 + i / 100, 1, "joiner") for i in range(100)]  # another worker's answers: not the victim's
    bound = replay_bound(seen, "victim", [0, 1], kill_at, every_s=1.5, every_ticks=1000)
    assert bound == 10 * 2 + 20 * 2  # each partition's rate times (1.5 s + the 0.5 s timer)
    assert replay_bound(seen, "victim", [0, 1], kill_at, every_s=1.5, every_ticks=30) == 20 + 30
