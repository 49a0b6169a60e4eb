"""What running workers say about themselves on ``/stats``, and waiting until they share every partition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tickcast.ops.lag import fetch_stats
from tickcast.ops.workers import Assignment, WorkerProcess, assignment_of, split_once
from tickcast.testing.waiting import wait_for

# Re-exported: tests and the bench wait on the same split the demo waits on.
__all__ = ["Assignment", "assignment_of", "split_once", "wait_for_split", "worker_stats"]


def worker_stats(worker: WorkerProcess, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """The worker's ``/stats`` JSON, or None while its web server is not up (or once it is gone)."""
    return fetch_stats(f"http://127.0.0.1:{worker.web_port}/stats", timeout_s)


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
