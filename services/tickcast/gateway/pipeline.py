"""What the gateway can tell about the pipeline from the predictions it reads: throughput, latency, workers."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from tickcast.gateway.cache import Published

#: Throughput and the set of active workers are judged over this many recent seconds.
WINDOW_S = 10.0


class PipelineView:
    """Predictions per second, tick-to-prediction latency, and the workers seen recently.

    >>> now = [100.0]
    >>> view = PipelineView(clock=lambda: now[0])
    >>> for offset in range(50):
    ...     view.observe(Published(0, offset, "A", 0.0, 1_000.0, "{}", worker="w-1", tick_produced_at_ms=990))
    >>> now[0] = 105.0
    >>> view.rate(), view.workers(), view.latency_ms
    (5.0, ['w-1'], 10.0)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counts: deque[tuple[float, int]] = deque()
        self._workers: dict[str, float] = {}
        self.latency_ms: float | None = None
        """Tick produced to prediction made, exponentially weighted (alpha 0.05), in ms."""
        self.dead_letters = 0

    def observe(self, item: Published) -> None:
        now = self._clock()
        if self._counts and self._counts[-1][0] == now:
            self._counts[-1] = (now, self._counts[-1][1] + 1)  # one entry per batch (same clock reading)
        else:
            self._counts.append((now, 1))
            # Here too, not only in rate(): only /v1/pipeline asks for that, and a gateway nobody asks kept an
            # entry per new clock reading (about one per prediction) for as long as it ran.
            self._forget_before(now - WINDOW_S)
        self._workers[item.worker] = now
        latency = item.predicted_at_ms - item.tick_produced_at_ms
        self.latency_ms = latency if self.latency_ms is None else self.latency_ms + 0.05 * (latency - self.latency_ms)

    def rate(self) -> float:
        """Predictions per second over the last :data:`WINDOW_S` seconds."""
        self._forget_before(self._clock() - WINDOW_S)
        return round(sum(count for _, count in self._counts) / WINDOW_S, 2)

    def _forget_before(self, cutoff: float) -> None:
        while self._counts and self._counts[0][0] < cutoff:
            self._counts.popleft()

    def workers(self) -> list[str]:
        """Workers that made a prediction in the last :data:`WINDOW_S` seconds."""
        cutoff = self._clock() - WINDOW_S
        for worker in [w for w, seen in self._workers.items() if seen < cutoff]:
            del self._workers[worker]
        return sorted(self._workers)
