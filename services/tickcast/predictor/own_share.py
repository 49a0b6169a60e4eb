"""Where the worker's own latency goes: its own CPU, or waiting for a CPU that other processes hold.

The worker's own share of a tick's latency runs from "the fetch returned" to "its outcome was
handed to the producer". One fetch brings records of several partitions; they are handled one
partition after another, so a record of the last partition also waits for the earlier ones. On a
loaded machine the handling thread is also often runnable but not running: the kernel gives the
cores to the broker and the other processes. A p99 alone cannot tell those apart, and only one of
them is the worker's to fix.

So each batch (everything one fetch brought: the worker's records of all its partitions, the plain
loop's one poll) is measured three ways, from its fetch to its last outcome handed over: wall time
(what its slowest tick waited: the batch's largest own latency), the handling thread's CPU time, and
the time that thread spent runnable, waiting for a CPU. Linux counts the last in
``/proc/thread-self/schedstat`` (CPU ns, run-queue wait ns, time slices); reading it costs ~2 µs,
twice per fetch. CPU time comes from :func:`time.thread_time` (the schedstat figure lags by up to a
scheduler tick); elsewhere than Linux the wait reads as zero.

Measured with this (issue 18, 500 ticks/s, next-tick configuration, load 4-10 on 2 cores): the
batches over 2 ms had spent most of that time runnable without a CPU, and the rest handling the
records of earlier partitions of the same fetch (~0.2-0.3 ms each at this load). Until 2026-12-02 a
worker's batch was one partition of a fetch; that split counted each fetch several times, and its
p99s are not comparable with the plain loop's or with later runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tickcast.predictor.metrics import OWN_LATENCY_BUCKETS, BucketHistogram

#: This thread's scheduler statistics; the name resolves to the thread that opens it.
SCHEDSTAT = "/proc/thread-self/schedstat"


class ThreadClock:
    """The CPU time one thread has run and the time it has waited runnable for a CPU, both in seconds.

    Create it on the thread it is to measure (the worker's event-loop thread).

    >>> clock = ThreadClock()
    >>> cpu, waited = clock.read()
    >>> _ = sum(range(100_000))
    >>> later_cpu, later_waited = clock.read()
    >>> later_cpu > cpu and later_waited >= waited
    True
    """

    __slots__ = ("_fd",)

    def __init__(self, path: str = SCHEDSTAT) -> None:
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY)
            self._read_schedstat(self._fd)
        except (OSError, ValueError, IndexError):
            self._fd = None  # not Linux, or schedstat not compiled in: CPU time only

    @property
    def sees_waiting(self) -> bool:
        """True when the wait for a CPU is measured (Linux); False when it always reads 0."""
        return self._fd is not None

    @staticmethod
    def _read_schedstat(fd: int) -> float:
        # The second field, the run-queue wait, is added when the thread gets a CPU: current while it runs.
        # The first (CPU time) is only brought up to date at a scheduler tick, so CPU comes from thread_time.
        return int(os.pread(fd, 128, 0).split()[1]) / 1e9

    def read(self) -> tuple[float, float]:
        """(CPU seconds, seconds runnable without a CPU) of the thread, since it started."""
        if self._fd is None:
            return time.thread_time(), 0.0
        return time.thread_time(), self._read_schedstat(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True, slots=True)
class FetchStamp:
    """When a fetch returned: wall clock (``time.perf_counter``), and the thread's CPU and waiting seconds."""

    at: float
    cpu: float
    waited: float


@dataclass(slots=True)
class OwnShareSplit:
    """Per batch, from its fetch to its last outcome handed over: wall time, CPU time, and waiting for a CPU.

    >>> split = OwnShareSplit(ThreadClock("/nonexistent"))
    >>> stamp = split.fetched()
    >>> split.batch_done(stamp)
    >>> [sum(n for _, n in buckets[-1:]) for buckets in split.to_stats().values()]
    [1, 1, 1]
    """

    clock: ThreadClock = field(default_factory=ThreadClock)
    bounds: Sequence[float] = OWN_LATENCY_BUCKETS
    wall: BucketHistogram = field(init=False)
    cpu: BucketHistogram = field(init=False)
    waiting_for_cpu: BucketHistogram = field(init=False)

    def __post_init__(self) -> None:
        self.wall = BucketHistogram(self.bounds)
        self.cpu = BucketHistogram(self.bounds)
        self.waiting_for_cpu = BucketHistogram(self.bounds)

    def fetched(self) -> FetchStamp:
        """Stamp a fetch that just returned (on the thread that will handle its records)."""
        cpu, waited = self.clock.read()
        return FetchStamp(time.perf_counter(), cpu, waited)

    def batch_done(self, stamp: FetchStamp) -> None:
        """Observe a batch of ``stamp``'s fetch whose last outcome was just handed to the producer."""
        cpu, waited = self.clock.read()
        self.wall.observe(time.perf_counter() - stamp.at)
        self.cpu.observe(cpu - stamp.cpu)
        self.waiting_for_cpu.observe(waited - stamp.waited)

    def to_stats(self) -> dict[str, list[tuple[str, int]]]:
        """The three histograms as cumulative (le, count) buckets, for ``/stats``."""
        return {
            "wall": self.wall.cumulative(),
            "cpu": self.cpu.cumulative(),
            "waiting_for_cpu": self.waiting_for_cpu.cumulative(),
        }
