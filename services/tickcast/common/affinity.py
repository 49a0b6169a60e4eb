"""CPU affinity of whole processes (Linux): pin every thread of a process tree to some cores, and read it back.

Used to place processes as they would be in production, where the broker has machines of its own: the
latency bench (``bench.topology``) and ``tickcast demo --topology split`` keep the embedded broker off the
cores the workers run on. Linux keeps affinity per thread, so a process is pinned by pinning each of its
threads (``/proc/PID/task``); threads it starts afterwards inherit the mask of the thread that starts them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

import psutil

#: Where the processes of a run are placed: everything on every core, or the workers on a core of their own.
SHARED = "shared"
SPLIT = "split"
TOPOLOGIES = (SHARED, SPLIT)


def supported() -> bool:
    """Whether this platform can pin threads (Linux)."""
    return hasattr(os, "sched_setaffinity") and Path("/proc/self/task").is_dir()


def available_cpus() -> list[int]:
    """The cores this process may run on, in order.

    >>> set(available_cpus()) <= set(range(os.cpu_count() or 1))
    True
    """
    return sorted(os.sched_getaffinity(0)) if supported() else list(range(os.cpu_count() or 1))


def split_cpus(cpus: Iterable[int]) -> tuple[frozenset[int], frozenset[int]]:
    """(the others' cores, the workers' core): the last core for the workers, the rest for everything else.

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


def threads_of(pid: int, descendants: bool = True) -> list[int]:
    """Thread ids of ``pid`` (and of its descendants); empty for a process that is gone."""
    try:
        root = psutil.Process(pid)
        processes = [root, *(root.children(recursive=True) if descendants else [])]
    except psutil.NoSuchProcess:
        return []
    tids: list[int] = []
    for process in processes:
        with contextlib.suppress(FileNotFoundError):
            tids += [int(tid) for tid in os.listdir(Path("/proc") / str(process.pid) / "task")]
    return tids


def pin(pid: int, cpus: Iterable[int], descendants: bool = True) -> int:
    """Pin every thread of ``pid`` (and of its descendants) to ``cpus``; the number of threads pinned."""
    mask = frozenset(cpus)
    pinned = 0
    for tid in threads_of(pid, descendants):
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
