"""Freezing a process (SIGSTOP/SIGCONT) for a while: the embedded broker during an outage, in tests and benches.

A stopped broker keeps its sockets open and answers nothing, which is what a hung or partitioned
broker looks like to a client: requests time out, and librdkafka retries until ``message.timeout.ms``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused(pid: int | None) -> Iterator[None]:
    """Stop process ``pid`` for the duration of the ``with`` block; it is continued even if the block raises.

    >>> with paused(None):
    ...     pass
    Traceback (most recent call last):
    ...
    ValueError: the process to pause is not running
    """
    if pid is None:
        raise ValueError("the process to pause is not running")
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
