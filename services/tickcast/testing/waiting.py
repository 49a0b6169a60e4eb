"""Waiting for another process to do something: poll with a deadline, and say what did not happen."""

from __future__ import annotations

import time
from collections.abc import Callable

from tickcast.common.processes import wait_until


def wait_for(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    *,
    check: Callable[[], None] | None = None,
    diagnostics: Callable[[], str] | None = None,
    interval_s: float = 0.2,
) -> float:
    """Poll ``condition`` until it holds; return the seconds it took.

    ``check`` runs before every poll and may raise, e.g. when a process it waits on has died. On timeout
    the :class:`TimeoutError` names ``what`` did not happen, followed by ``diagnostics()`` (worker logs,
    the last state seen), so a failure explains itself.

    >>> wait_for(lambda: True, 1.0, "truth") < 1.0
    True
    >>> wait_for(lambda: False, 0.1, "the impossible", diagnostics=lambda: "--- worker-1.log\\nboom")
    Traceback (most recent call last):
    ...
    TimeoutError: timed out after 0.1s waiting for the impossible
    --- worker-1.log
    boom
    """
    started = time.monotonic()

    def holds() -> bool:
        if check is not None:
            check()
        return condition()

    try:
        wait_until(holds, timeout_s, what, interval_s)
    except TimeoutError as exc:
        if diagnostics is None:
            raise
        raise TimeoutError(f"{exc}\n{diagnostics()}") from None
    return time.monotonic() - started
