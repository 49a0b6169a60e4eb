"""Where ``bench.gateway``'s processes run: everything on every core (``shared``), or ``split`` as in production.

In production a serving pod gets cores of its own (Kubernetes CPU manager ``static`` policy: a Guaranteed pod
with an integer CPU request = limit is given exclusive cores) and the broker runs on other machines. On the bench
machine the gateway shares two cores with the broker, the workers, the feed and the load generators (wrk, the
SSE clients), and a GET's latency includes the time the gateway's loop waits for a core one of them holds.
``split`` gives the gateway (every thread of it) the last core and everything else the bench starts the others,
with Linux CPU affinity (``os.sched_setaffinity``), so what is left of the tail is the gateway's own.

How: the bench process pins itself (every thread: the paced feed is one of them) to the others' cores before a
stack starts, so every process it starts afterwards (broker, workers, wrk, SSE loads) inherits that mask; the
gateway is then moved to its core, every thread of it (Linux keeps affinity per thread; a thread started later
inherits the mask of the thread that starts it). The same words (``--topology shared|split``) as the latency
bench's ``bench.topology`` (branch wt-lat10), so the two can share one implementation.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

import psutil

SHARED = "shared"
SPLIT = "split"
TOPOLOGIES = (SHARED, SPLIT)


def split_cpus(cpus: Iterable[int]) -> tuple[frozenset[int], frozenset[int]]:
    """(everything else's cores, the gateway's core): the last core for the gateway (one, as its pod requests).

    >>> split_cpus([0, 1])
    (frozenset({0}), frozenset({1}))
    >>> split_cpus([3])
    Traceback (most recent call last):
    ...
    ValueError: a split topology needs at least 2 CPUs, got [3]
    """
    ordered = sorted(cpus)
    if len(ordered) < 2:
        raise ValueError(f"a split topology needs at least 2 CPUs, got {ordered}")
    return frozenset(ordered[:-1]), frozenset(ordered[-1:])


def topologies_of(text: str) -> list[str]:
    """``--topology``: comma-separated topologies, each once.

    >>> topologies_of("shared,split")
    ['shared', 'split']
    >>> topologies_of("both")
    Traceback (most recent call last):
    ...
    ValueError: unknown topology 'both' (one of shared, split)
    """
    names = [name for name in text.split(",") if name]
    for name in names:
        if name not in TOPOLOGIES:
            raise ValueError(f"unknown topology {name!r} (one of {', '.join(TOPOLOGIES)})")
    return list(dict.fromkeys(names)) or [SHARED]


def topology_order(round_: int, topologies: list[str]) -> list[str]:
    """The topologies in round ``round_`` (from 0): as given in rounds 1, 3, …, reversed in 2, 4, … (the
    machine's load drifts; alternating cancels it over pairs of rounds).

    >>> [topology_order(r, ["shared", "split"]) for r in range(2)]
    [['shared', 'split'], ['split', 'shared']]
    """
    return list(topologies) if round_ % 2 == 0 else list(reversed(topologies))


def threads_of(pid: int) -> list[int]:
    """Thread ids of ``pid`` and of its descendants; empty for a process that is gone."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    tids: list[int] = []
    for process in processes:
        with contextlib.suppress(FileNotFoundError):
            tids += [int(tid) for tid in os.listdir(Path("/proc") / str(process.pid) / "task")]
    return tids


def pin(pid: int, cpus: Iterable[int]) -> int:
    """Pin every thread of ``pid`` (and of its descendants) to ``cpus``; the number of threads pinned."""
    mask = frozenset(cpus)
    pinned = 0
    for tid in threads_of(pid):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, mask)
            pinned += 1
    return pinned


def cpus_of(pid: int) -> list[int]:
    """Every core any thread of ``pid`` (or of a descendant) may run on: shows whether a pin held.

    >>> cpus_of(os.getpid()) == sorted(set().union(*(os.sched_getaffinity(t) for t in threads_of(os.getpid()))))
    True
    """
    seen: set[int] = set()
    for tid in threads_of(pid):
        with contextlib.suppress(ProcessLookupError):
            seen |= os.sched_getaffinity(tid)
    return sorted(seen)
