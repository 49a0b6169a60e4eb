"""The worker's GIL switch interval: how long its event loop may wait for the GIL held by Faust's Kafka thread.

Faust runs aiokafka's consumer on a thread of its own, in the worker's process: its fetches, the records it
builds and its bookkeeping all hold the GIL while they run Python. A thread that wants the GIL waits up to
:func:`sys.getswitchinterval` (Python: 5 ms) before it asks the holder to let go, so while the Kafka thread
works, a batch the event loop is handling can stall that long: a share of the worker's own latency that is
neither its CPU nor a wait for a core (see :mod:`tickcast.predictor.own_share`).
"""

from __future__ import annotations

import sys


def set_switch_interval(interval_ms: float) -> float:
    """Set the interpreter's GIL switch interval to ``interval_ms``; 0 keeps Python's. Returns the previous one (s).

    >>> previous = set_switch_interval(1.0)
    >>> sys.getswitchinterval()
    0.001
    >>> _ = set_switch_interval(0)
    >>> sys.getswitchinterval()
    0.001
    >>> sys.setswitchinterval(previous)
    """
    previous = sys.getswitchinterval()
    if interval_ms > 0:
        sys.setswitchinterval(interval_ms / 1000)
    return previous
