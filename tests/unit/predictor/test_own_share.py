"""The own-share split: a batch's wall time, its thread's CPU, and the time that thread waited for a CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tickcast.predictor.own_share import OwnShareSplit, ThreadClock


class ScriptedClock(ThreadClock):
    """Reads (CPU, waited) from a script instead of the kernel."""

    def __init__(self, readings: list[tuple[float, float]]) -> None:
        super().__init__("/nonexistent")
        self.readings: Iterator[tuple[float, float]] = iter(readings)

    def read(self) -> tuple[float, float]:
        return next(self.readings)


def counts(buckets: list[tuple[str, int]]) -> dict[str, int]:
    """Observations per bucket (not cumulative), only the non-empty ones."""
    out, previous = {}, 0
    for le, cumulative in buckets:
        if cumulative > previous:
            out[le] = cumulative - previous
        previous = cumulative
    return out


def test_a_batch_is_split_into_its_threads_cpu_and_its_wait_for_a_cpu() -> None:
    split = OwnShareSplit(ScriptedClock([(10.0, 5.0), (10.0012, 5.0085)]))
    stamp = split.fetched()
    split.batch_done(stamp)
    stats = split.to_stats()
    assert counts(stats["cpu"]) == {"0.0015": 1}  # 1.2 ms on the CPU
    assert counts(stats["waiting_for_cpu"]) == {"0.01": 1}  # 8.5 ms runnable without one
    assert sum(counts(stats["wall"]).values()) == 1


def test_without_schedstat_the_wait_reads_zero_and_cpu_time_still_counts() -> None:
    clock = ThreadClock("/nonexistent")
    cpu, waited = clock.read()
    _ = sum(range(200_000))
    later_cpu, later_waited = clock.read()
    assert not clock.sees_waiting
    assert later_cpu > cpu
    assert waited == later_waited == 0.0


@pytest.mark.skipif(not ThreadClock().sees_waiting, reason="needs Linux's /proc/thread-self/schedstat")
def test_time_runnable_while_another_process_holds_the_only_cpu_counts_as_waiting() -> None:
    cpu_id = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(hog.pid, {cpu_id})
        os.sched_setaffinity(0, {cpu_id})  # this thread and the hog now share one CPU
        clock = ThreadClock()
        started, (cpu, waited) = time.perf_counter(), clock.read()
        while time.perf_counter() - started < 0.5:
            _ = sum(range(1_000))
        wall = time.perf_counter() - started
        later_cpu, later_waited = clock.read()
    finally:
        os.sched_setaffinity(0, before)
        hog.kill()
        hog.wait(timeout=10)
    ran, waited_s = later_cpu - cpu, later_waited - waited
    # Sharing one CPU with a busy process, the thread spends a large part of the time runnable but not running,
    # and what it neither ran nor waited is small: it never blocked.
    assert waited_s > 0.2 * wall, (ran, waited_s, wall)
    assert ran + waited_s == pytest.approx(wall, rel=0.15), (ran, waited_s, wall)
