"""What holds the gateway's event loop: its lag (how late a short timer fires) and garbage-collection pauses.

Every GET and every client write waits for whatever the loop is doing, so a latency tail is a loop stall
somewhere: these two metrics say how long the stalls are, and whether the collector makes them.
:func:`settle_gc` makes the collector's pauses rarer and shorter.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from tickcast.gateway.metrics import GatewayMetrics

#: How often the lag probe's timer is due (s): 100 wakes/s cost next to nothing.
PROBE_INTERVAL_S = 0.01


async def probe_loop_lag(metrics: GatewayMetrics, interval_s: float = PROBE_INTERVAL_S) -> None:
    """Observe how much later than due a timer of ``interval_s`` fires, until cancelled.

    >>> m = GatewayMetrics()
    >>> async def briefly():
    ...     task = asyncio.create_task(probe_loop_lag(m, 0.001))
    ...     await asyncio.sleep(0.05)
    ...     task.cancel()
    >>> asyncio.run(briefly())
    >>> m.registry.get_sample_value("tickcast_gateway_loop_lag_seconds_count") > 0
    True
    """
    while True:
        due = time.perf_counter() + interval_s
        await asyncio.sleep(interval_s)  # the probe itself: a timer whose lateness is the measurement
        metrics.loop_lag.observe(max(0.0, time.perf_counter() - due))


class GcWatch:
    """Times each garbage collection (``gc.callbacks``) into the ``gc_pause`` histogram, by generation.

    >>> m = GatewayMetrics()
    >>> with GcWatch(m):
    ...     _ = gc.collect(2)
    >>> m.registry.get_sample_value("tickcast_gateway_gc_pause_seconds_count", {"generation": "2"}) >= 1
    True
    """

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._started
            self.metrics.gc_pause.labels(str(info.get("generation", "?"))).observe(pause)

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_: object) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


def settle_gc(threshold0: int, freeze: bool) -> None:
    """Collect less often, and not the start-up objects: call once the app has started.

    ``freeze``: :func:`gc.freeze` moves every object alive now (the framework, its routes and models, the
    imported modules) out of the collector's scans for good; they live as long as the process anyway.
    ``threshold0``: allocations between two young collections (Python's default 700); 0 keeps the current one.
    With 1,000 SSE clients the loop allocates fast, and each collection is a pause of the loop.

    >>> before = gc.get_threshold()
    >>> settle_gc(5_000, freeze=False)
    >>> gc.get_threshold()[0]
    5000
    >>> gc.set_threshold(*before)
    """
    if freeze:
        gc.freeze()
    if threshold0:
        gc.set_threshold(threshold0, *gc.get_threshold()[1:])
