"""Fan-out to SSE clients: each has a bounded queue; one that falls behind is dropped, never waited for.

Everything here runs on the event loop, so appending to the rings, registering a client and queueing
events never interleave: a client registered with a replay sees each offset exactly once.

A client whose stream is idle (nothing queued, its task waiting) and whose connection takes writes gets each
event written straight to its connection by :meth:`Hub.publish` (its :attr:`Subscription.direct`): no queue,
no wake-up, no task switch, no ASGI message per client per event, which with 1,000 clients was most of the
gateway's CPU per event. Otherwise (its connection's buffer is full, or its task is still writing) the event is
queued as before, the task wakes and writes the queue, and a client whose queue fills is dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from tickcast.gateway.cache import Published
from tickcast.gateway.frames import prediction_frame
from tickcast.gateway.metrics import GatewayMetrics
from tickcast.gateway.positions import Positions

log = structlog.get_logger("tickcast.gateway")

#: Events read longer ago than this (s) are queued, not written directly: the gateway is behind, and the
#: streams' tasks write a backlog in one write per client (in the pipeline bench at load 11-15 the gateway
#: writing every event at once fell 6 s behind where the queueing one stayed within 1-4 s). Not less: a
#: one-symbol client gets ~10 events/s, so a queue of a shorter lag holds one event, and writing it through
#: the stream's task (a wake-up, a task switch, an ASGI message) costs more than the hub's direct write while
#: saving no write; at 10 ms every jitter of a loop sharing its core tipped the fan-out into that costlier
#: path (a quarter of the gateway's samples with 1,000 clients), which kept it behind.
DIRECT_WITHIN_S = 0.25
#: An SSE comment line: proxies see traffic on an idle stream, clients ignore it.
KEEPALIVE = b": keepalive\n\n"


class DropReason:
    SLOW = "slow_consumer"
    SHUTDOWN = "shutdown"
    REVOKED = "revoked"
    """The client's token is no longer in the clients file."""
    GONE = "disconnected"
    """The client closed the connection (it never sees this one)."""
    WRITE_FAILED = "write_failed"
    """Writing to the client's connection raised."""


@dataclass(eq=False)  # identity, not value: each client is its own entry in the hub's set
class Subscription:
    """One SSE client: its symbols (None = all), its position per partition, and what is queued for it.

    >>> sub = Subscription(frozenset({"A"}), {0: 4}, capacity=1)
    >>> sub.offer(Published(0, 5, "A", 0.0, 0.0, "{}")), sub.offer(Published(0, 6, "A", 0.0, 0.0, "{}"))
    (True, False)
    >>> sub.dropped
    'slow_consumer'
    """

    symbols: frozenset[str] | None
    positions: Positions
    capacity: int
    queue: deque[Published] = field(default_factory=deque)
    dropped: str | None = None
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    keepalive_due: bool = False
    """Set by the hub's keepalive sweep: the stream sends a comment line when it next wakes."""
    direct: Callable[[bytes], bool] | None = None
    """Writes an event's bytes to the client's connection at once, or returns False if the connection cannot
    take it now. Set by the stream's task only while it waits with nothing queued, so nothing written here can
    overtake what the task still holds."""
    client: str | None = None
    """The client's name in the clients file (None without authentication)."""
    credential: bytes | None = None
    """The digest of the token the stream was opened with: the stream is closed once it is no longer accepted."""
    beyond_end: list[int] = field(default_factory=list)
    """Partitions whose resume position turned out to name offsets the topic never had: the task resets them."""

    def wants(self, item: Published) -> bool:
        return self.symbols is None or item.symbol in self.symbols

    def offer(self, item: Published) -> bool:
        """Queue ``item``; False (and the client is marked dropped) if its queue is full."""
        if self.dropped is not None:
            return False
        if len(self.queue) >= self.capacity:
            self.drop(DropReason.SLOW)
            return False
        self.queue.append(item)
        self.wakeup.set()
        return True

    def drop(self, reason: str) -> None:
        self.dropped = reason
        self.direct = None
        self.queue.clear()
        self.wakeup.set()

    def write_now(self, item: Published) -> bool:
        """Write ``item`` straight to the connection if the client is idle and its connection takes it (or skip it
        if the client already had it); False if it must be queued instead (and from now on, until the stream's
        task has written the queue: order is kept).

        >>> sub = Subscription(frozenset({"A"}), {0: 4}, capacity=1)
        >>> sent = []
        >>> sub.direct = lambda data: sent.append(data) is None
        >>> sub.write_now(Published(0, 5, "A", 0.0, 0.0, "{}")), sub.write_now(Published(0, 5, "A", 0.0, 0.0, "{}"))
        (True, True)
        >>> len(sent), sub.positions
        (1, {0: 5})
        """
        direct = self.direct
        if direct is None:
            return False
        positions, partition = self.positions, item.partition
        before = positions.get(partition, -1)
        if item.offset <= before:
            return True  # already had it (a replay overlapping live events): nothing to write
        positions[partition] = item.offset  # a several-partition id names the position after the event
        data = prediction_frame(item, positions)
        try:
            if direct(data):
                return True
        except Exception as exc:
            self.write_failed(exc)  # then False, and offer() refuses it: the hub counts the drop
        positions[partition] = before  # not sent: the queue's path advances it when it writes the event
        self.direct = None
        return False

    def write_failed(self, exc: Exception) -> None:
        """Writing to the connection raised: drop this client. Its connection is broken, not the data, so the
        hub's pass goes on to the other clients and the record is not failed."""
        log.warning("gateway_client_write_failed", client=self.client, error=f"{type(exc).__name__}: {exc}")
        self.drop(DropReason.WRITE_FAILED)

    def advance(self, item: Published) -> bool:
        """Move past ``item``; False if the client already had it (a replay overlapping live events)."""
        if item.offset <= self.positions.get(item.partition, -1):
            return False
        self.positions[item.partition] = item.offset
        return True


class Hub:
    """The connected clients, indexed by symbol: :meth:`publish` touches only the clients that want the item."""

    def __init__(self, metrics: GatewayMetrics, max_clients: int) -> None:
        self.metrics = metrics
        self.max_clients = max_clients
        self._clients: set[Subscription] = set()
        self._everything: set[Subscription] = set()
        self._by_symbol: dict[str, set[Subscription]] = {}

    def __len__(self) -> int:
        return len(self._clients)

    def __contains__(self, subscription: object) -> bool:
        return subscription in self._clients

    def full(self) -> bool:
        return len(self._clients) >= self.max_clients

    def add(self, subscription: Subscription) -> None:
        self._clients.add(subscription)
        if subscription.symbols is None:
            self._everything.add(subscription)
        else:
            for symbol in subscription.symbols:
                self._by_symbol.setdefault(symbol, set()).add(subscription)
        self.metrics.clients.set(len(self._clients))
        if subscription.client is not None:
            self.metrics.streams_of(subscription.client).inc()

    def remove(self, subscription: Subscription) -> None:
        if subscription not in self._clients:
            return
        self._clients.discard(subscription)
        self._everything.discard(subscription)
        for symbol in subscription.symbols or ():
            wanting = self._by_symbol.get(symbol)
            if wanting is not None:
                wanting.discard(subscription)
                if not wanting:
                    del self._by_symbol[symbol]
        self.metrics.clients.set(len(self._clients))
        if subscription.client is not None:
            self.metrics.streams_of(subscription.client).dec()

    def revoke(self, accepts: Callable[[bytes | None], bool]) -> int:
        """Close the streams opened with a token ``accepts`` no longer takes; how many.

        Each is told why (a ``dropped`` event, reason ``revoked``) by its own task, which then ends the response.
        """
        revoked = [s for s in self._clients if s.credential is not None and not accepts(s.credential)]
        for subscription in revoked:
            subscription.drop(DropReason.REVOKED)
            self.metrics.dropped.labels(DropReason.REVOKED).inc()
            self.remove(subscription)
        return len(revoked)

    def publish(self, item: Published) -> None:
        wanting = self._by_symbol.get(item.symbol)
        targets = [*self._everything, *wanting] if wanting else list(self._everything)
        written = 0
        # Behind the stream (the loop is starved): queue, so each task writes its backlog in one write, which
        # is what lets the gateway catch up; one write per event per client at once would keep it behind.
        direct = time.monotonic() - item.received_at <= DIRECT_WITHIN_S
        for subscription in targets:
            if direct and subscription.write_now(item):
                written += 1
                continue
            subscription.direct = None  # queued from here on: nothing written directly may overtake it
            if not subscription.offer(item):  # also refused once its write raised: dropped then
                # Out of the index at once: a dropped client holds no memory and costs no more work.
                self.metrics.dropped.labels(subscription.dropped or DropReason.SLOW).inc()
                self.remove(subscription)
        if written:
            # Each direct write is one write of one event, as the stream's own writes are observed.
            delay, observe = time.monotonic() - item.received_at, self.metrics.delay.observe
            for _ in range(written):
                observe(delay)
            self.metrics.events.inc(written)

    async def keep_alive(self, interval_s: float) -> None:
        """Every ``interval_s``, have every client send a comment line (proxies close silent streams); until cancelled.

        One timer for all clients, instead of one per client per wait.
        """
        while True:
            await asyncio.sleep(interval_s)  # the keepalive period itself, not a wait for an event
            for subscription in list(self._clients):  # a copy: a client whose write raises leaves the set
                direct = subscription.direct
                try:
                    if direct is not None and direct(KEEPALIVE):
                        continue
                except Exception as exc:
                    subscription.write_failed(exc)
                    self.metrics.dropped.labels(DropReason.WRITE_FAILED).inc()
                    self.remove(subscription)
                    continue
                subscription.direct = None  # its connection is full: the task writes it when it can
                subscription.keepalive_due = True
                subscription.wakeup.set()

    def close(self) -> None:
        for subscription in list(self._clients):
            subscription.drop(DropReason.SHUTDOWN)
            self.remove(subscription)
