"""What running workers say about themselves on ``/stats``, and waiting until they share every partition."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tickcast.ops.lag import fetch_stats
from tickcast.ops.workers import WorkerProcess
from tickcast.testing.waiting import wait_for

Assignment = dict[str, list[int]]


def worker_stats(worker: WorkerProcess, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """The worker's ``/stats`` JSON, or None while its web server is not up (or once it is gone)."""
    return fetch_stats(f"http://127.0.0.1:{worker.web_port}/stats", timeout_s)


def assignment_of(workers: Iterable[WorkerProcess]) -> Assignment | None:
    """Worker id -> the partitions it owns, from every worker's ``/stats``; None while one does not answer."""
    owned: Assignment = {}
    for worker in workers:
        stats = worker_stats(worker)
        if stats is None:
            return None
        owned[worker.worker_id] = sorted(stats.get("assigned_partitions", []))
    return owned


def split_once(assignment: Mapping[str, Sequence[int]], partitions: int) -> bool:
    """True when each of partitions ``0..partitions-1`` has exactly one owner and every owner has some.

    An owner with nothing has not finished joining; a partition owned twice is a rebalance in progress.

    >>> split_once({"w-1": [0, 2], "w-2": [1, 3]}, 4)
    True
    >>> split_once({"w-1": [0, 1], "w-2": [1, 2, 3]}, 4), split_once({"w-1": [0, 1, 2, 3], "w-2": []}, 4)
    (False, False)
    >>> split_once({"w-1": [0, 1]}, 4)
    False
    """
    owned = sorted(p for parts in assignment.values() for p in parts)
    return owned == list(range(partitions)) and all(assignment.values())


def wait_for_split(
    read: Callable[[], Assignment | None],
    partitions: int,
    owners: str,
    timeout_s: float = 60.0,
    *,
    check: Callable[[], None] | None = None,
    diagnostics: Callable[[], str] | None = None,
) -> Assignment:
    """Poll ``read`` until :func:`split_once` holds; return that assignment.

    ``owners`` names who should share the partitions, for the message; the :class:`TimeoutError` also
    gives the last assignment seen and ``diagnostics()``.

    >>> wait_for_split(lambda: {"w-1": [0, 1]}, 2, "one worker")
    {'w-1': [0, 1]}
    >>> wait_for_split(lambda: {"w-1": [0], "w-2": []}, 2, "two workers", 0.1)
    Traceback (most recent call last):
    ...
    TimeoutError: timed out after 0.1s waiting for partitions 0..1 to be split among two workers
    last seen: {'w-1': [0], 'w-2': []}
    """
    last: list[Assignment | None] = [None]

    def split() -> bool:
        last[0] = read()
        return last[0] is not None and split_once(last[0], partitions)

    def explain() -> str:
        return f"last seen: {last[0]}" + (f"\n{diagnostics()}" if diagnostics is not None else "")

    what = f"partitions 0..{partitions - 1} to be split among {owners}"
    wait_for(split, timeout_s, what, check=check, diagnostics=explain)
    assert last[0] is not None  # nosec B101 # narrows the type: split() returned True only with an assignment
    return last[0]
