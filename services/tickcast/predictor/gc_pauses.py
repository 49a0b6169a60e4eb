"""The garbage collector's pauses in a worker: how many collections of each generation, and how long each took.

A collection holds the GIL from start to end, so every Python thread of the process waits for it: a pause
while a fetch is being handled lands in the own share of that fetch's later ticks. Issue 18 asked whether
collections make the own share's tail; this answers it for every run instead of once.

Measured (``python -m bench --next-tick --only latency --rates 500``, 2026-12-02, load 9-10 on 2 cores): no
collection at all in the worker or in the plain loop while the feed ran (~22 s). After
:func:`tickcast.predictor.gc_tuning.tune_for_throughput` has frozen start-up, the young generation's threshold
(20,000 net allocations) is reached about every half minute at that rate, and a scratch probe found only ~8,800
objects outside the frozen set at the end of such a run: a collection of them is short. The tail is elsewhere
(see :mod:`tickcast.predictor.own_share`).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from tickcast.predictor.metrics import OWN_LATENCY_BUCKETS, BucketHistogram

#: CPython's generations, by the name each one's histogram has on ``/stats``.
GENERATIONS = ("gc_gen0", "gc_gen1", "gc_gen2")


class GcPauses:
    """Histograms of the wall time of every collection, per generation, fed by a :data:`gc.callbacks` hook.

    One per process (:data:`PROCESS_GC_PAUSES`): the collector is the process's, whichever thread triggers it.

    >>> pauses = GcPauses()
    >>> pauses.install()
    >>> _ = gc.collect(1)
    >>> pauses.uninstall()
    >>> dict(pauses.to_stats()["gc_gen1"])["+Inf"] >= 1
    True
    """

    __slots__ = ("_started", "histograms")

    def __init__(self) -> None:
        self.histograms = [BucketHistogram(OWN_LATENCY_BUCKETS) for _ in GENERATIONS]
        self._started = 0.0

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        # Collections never overlap (each holds the GIL throughout), so one start time is enough.
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.histograms[info["generation"]].observe(time.perf_counter() - self._started)

    def install(self) -> None:
        """Start timing collections; installing twice times each one once."""
        if self._observe not in gc.callbacks:
            gc.callbacks.append(self._observe)

    def uninstall(self) -> None:
        if self._observe in gc.callbacks:
            gc.callbacks.remove(self._observe)

    def to_stats(self) -> dict[str, list[tuple[str, int]]]:
        """Each generation's pauses as cumulative (le, count) buckets of seconds, for ``/stats``."""
        return {name: histogram.cumulative() for name, histogram in zip(GENERATIONS, self.histograms, strict=True)}


PROCESS_GC_PAUSES = GcPauses()
"""This process's collector pauses; a worker (and the bench's plain loop) installs it once at start-up."""
