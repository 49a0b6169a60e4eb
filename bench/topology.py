"""Where the latency bench's processes run: everything on every core (``shared``), or ``split`` as in production.

In production the broker runs on its own machines, so a worker never waits for a CPU the broker holds.
On the bench machine the embedded broker, the paced feed and the tap (this process) and the measured
processor (a worker or the plain loop) all share the same few cores, and the processor's own share
(fetch returned → handed to the producer) includes waiting for a core the broker is using. ``split``
pins the broker and this process to some cores and the processor to the last one, with Linux CPU
affinity (``os.sched_setaffinity``; Linux only), so that waiting is gone from the measurement. Both
processors get the same treatment, so their ratio stays fair.

Affinity is per thread on Linux; ``tickcast.common.affinity`` pins every thread of a process tree.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from bench.core import BenchError
from tickcast.common.affinity import SHARED, SPLIT, TOPOLOGIES, available_cpus, cpus_of, pin, split_cpus, supported

__all__ = [
    "SHARED",
    "SPLIT",
    "TOPOLOGIES",
    "Pinning",
    "Placement",
    "cpus_of",
    "default",
    "pin",
    "pinned",
    "placement",
]


def default() -> str:
    """``split`` where threads can be pinned and there are 2 cores or more, else ``shared``.

    Split is the default since session 9 (issue 18; 6 alternating rounds each at 500 ticks/s, load 4-7): worker
    p99 over the first 10 s median 68.5 ms split against 111 shared, the plain loop's 84.5 against 180, own share
    p99 4 ms against 6.25 (plain 3 against 10), the broker at 0.64-0.69 cores against 0.75-0.91.

    >>> default() in TOPOLOGIES
    True
    """
    return SPLIT if supported() and len(available_cpus()) >= 2 else SHARED


@dataclass(frozen=True)
class Placement:
    """The cores of a topology: ``rest`` for the broker, the feed and the tap, ``measured`` for the processor."""

    name: str
    rest: frozenset[int]
    measured: frozenset[int]

    def describe(self) -> dict[str, object]:
        """For the JSON and the printed inputs.

        >>> placement(SPLIT, {0, 1}).describe()
        {'name': 'split', 'broker_feed_tap_cpus': [0], 'processor_cpus': [1]}
        """
        return {"name": self.name, "broker_feed_tap_cpus": sorted(self.rest), "processor_cpus": sorted(self.measured)}


def placement(name: str, cpus: Iterable[int] | None = None) -> Placement:
    """The cores of topology ``name`` among ``cpus`` (this process's affinity by default).

    >>> placement(SHARED, {0, 1})
    Placement(name='shared', rest=frozenset({0, 1}), measured=frozenset({0, 1}))
    >>> placement(SPLIT, {0, 1, 2, 3}).measured
    frozenset({3})
    >>> placement(SPLIT, {5})
    Traceback (most recent call last):
    ...
    bench.core.BenchError: topology 'split': a split topology needs at least 2 CPUs, got [5]
    """
    available = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
    if name == SHARED:
        return Placement(name, frozenset(available), frozenset(available))
    if name != SPLIT:
        raise BenchError(f"unknown topology {name!r} (one of {', '.join(TOPOLOGIES)})")
    try:
        # One core for the measured processor (a predictor pod requests one), the rest for everything else.
        rest, measured = split_cpus(available)
    except ValueError as exc:
        raise BenchError(f"topology {name!r}: {exc}") from exc
    return Placement(name, rest, measured)


@dataclass
class Pinning:
    """Applies a placement for one measurement and undoes it: see :func:`pinned`."""

    placement: Placement
    broker_pid: int
    everywhere: frozenset[int] = field(default_factory=lambda: frozenset(os.sched_getaffinity(0)))
    processors: list[int] = field(default_factory=list)

    def measured(self, pids: Iterable[int]) -> None:
        """Pin the processor's processes (call again after it has started its threads: it costs nothing)."""
        for pid in pids:
            if pid not in self.processors:
                self.processors.append(pid)
            if self.placement.name != SHARED:
                pin(pid, self.placement.measured)

    def seen(self) -> dict[str, list[int]]:
        """The cores the processes may run on now (call before stopping the processor)."""
        return {
            "broker": cpus_of(self.broker_pid),
            "bench": cpus_of(os.getpid()),
            "processor": sorted({cpu for pid in self.processors for cpu in cpus_of(pid)}),
        }


@contextlib.contextmanager
def pinned(placement: Placement, broker_pid: int) -> Iterator[Pinning]:
    """Pin the broker and this process (the feed and the tap run in its threads) to ``placement.rest`` for
    the block; the processor is pinned through :meth:`Pinning.measured`. On leaving, the broker and this
    process get back the cores this process had on entering (the broker serves the next measurement too).
    """
    pinning = Pinning(placement, broker_pid)
    if placement.name == SHARED:
        yield pinning
        return
    try:
        pin(broker_pid, placement.rest)
        pin(os.getpid(), placement.rest)
        yield pinning
    finally:
        pin(broker_pid, pinning.everywhere)
        pin(os.getpid(), pinning.everywhere)
