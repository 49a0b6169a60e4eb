"""The gateway's state, fed by a prediction source: cache, per-partition rings and the client hub.

A source (Kafka in production, a list in tests) calls :meth:`PredictionFeed.ingest` on the event loop;
HTTP handlers read the cache and open streams here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from tickcast.common.topics import partition_for, symbol_key
from tickcast.gateway.auth import Clients
from tickcast.gateway.cache import LatestCache, PartitionRing, Published
from tickcast.gateway.hub import Hub, Subscription
from tickcast.gateway.metrics import GatewayMetrics
from tickcast.gateway.pipeline import PipelineView
from tickcast.gateway.positions import Positions
from tickcast.gateway.settings import GatewaySettings

log = structlog.get_logger("tickcast.gateway")

#: A resume position beyond what this gateway has read may be one another replica served a moment ago (it reads
#: the topic a little ahead). Still beyond it after this long, it names offsets this topic never had (it was
#: deleted and recreated since, or the id is another cluster's): the stream is reset instead of waiting for them.
AHEAD_GRACE_S = 5.0


@dataclass(frozen=True, slots=True)
class StreamStart:
    """A new client's subscription, what it missed while away (to replay), and partitions it missed for good."""

    subscription: Subscription
    replay: list[Published]
    missed: list[int]


class PredictionFeed:
    """Latest per symbol, recent per partition, and the connected clients, kept up to date by :meth:`ingest`.

    >>> from tickcast.common.records import Prediction
    >>> feed = PredictionFeed(GatewaySettings(partitions=2, gateway_ring_size=2))
    >>> p = Prediction("SPY", 1, 2.0, 0.5, 2.0001, 1, "READY", "m", "1", 3, "t", 0, 9, 1, 2_000, "w")
    >>> feed.ingest([Published.of(feed.partition_of("SPY"), 7, p, 0.0)])
    >>> feed.cache.get("SPY").offset, feed.partition_of("SPY") in feed.rings
    (7, True)
    """

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or GatewayMetrics()
        self.cache = LatestCache(settings.gateway_max_symbols)
        self.rings: dict[int, PartitionRing] = {}
        self.hub = Hub(self.metrics, settings.gateway_max_clients)
        self.caught_up: set[int] = set()
        self.started_at = time.monotonic()
        self.ready_after_s: float | None = None
        self.reader_error: str | None = None
        """Why the source's reader failed, from then until it read every partition to its end again."""
        self.pipeline = PipelineView()
        self._ahead: dict[Subscription, float] = {}
        """Streams that resumed beyond what was read on some partition, with when they opened (monotonic)."""
        # Read at start: a clients file that is missing or malformed stops the gateway with one line.
        path = settings.gateway_clients_file
        self.clients: Clients | None = Clients.load(path) if path is not None else None
        if self.clients is not None:
            self.metrics.keep_clients(self.clients.names)

    @property
    def partitions(self) -> range:
        return range(self.settings.partitions)

    def partition_of(self, symbol: str) -> int:
        return partition_for(symbol_key(symbol), self.settings.partitions)

    def ring(self, partition: int) -> PartitionRing:
        ring = self.rings.get(partition)
        if ring is None:
            ring = self.rings[partition] = PartitionRing(self.settings.gateway_ring_size)
        return ring

    def ingest(self, items: Iterable[Published]) -> None:
        """New predictions, in offset order per partition: into the cache, the rings, and out to clients."""
        for item in items:
            ring = self.ring(item.partition)
            if item.offset <= ring.head:
                continue  # a source that re-reads (reconnect) must not send anything twice
            try:
                ring.append(item)
                self.cache.put(item)
                self.metrics.predictions.inc()
                self.pipeline.observe(item)
                self.hub.publish(item)
            except Exception as exc:
                # Raised out of here, it cost every record after it in the batch, and the partition ends the
                # source handed over with them (so a gateway still starting never got ready).
                skip_failed(self.metrics, self.settings.predictions_topic, item.partition, item.offset, "apply", exc)
        self.metrics.symbols.set(len(self.cache))

    def reached_end(self, partition: int, offset: int) -> None:
        """The source read ``partition`` up to ``offset`` (its end when read): it serves that partition now."""
        self.ring(partition).start(offset)
        was_ready = self.ready
        self.caught_up.add(partition)
        if self.ready and not was_ready:
            if self.ready_after_s is None:
                self.ready_after_s = time.monotonic() - self.started_at
            self.reader_error = None  # a restarted reader has caught up: current predictions again
            self.metrics.ready.set(1)

    def reader_failed(self, reason: str) -> None:
        """The source's reader stopped on an unexpected error (it restarts it): what is served grows older, so
        the gateway is not ready (``/health`` 503 with ``reason``) until every partition was read to its end again."""
        self.reader_error = reason
        self.caught_up.clear()
        self.metrics.ready.set(0)
        self.metrics.reader_failures.inc()

    @property
    def ready(self) -> bool:
        return all(partition in self.caught_up for partition in self.partitions)

    def refresh_clients(self, now: float) -> int:
        """Re-read the clients file if it changed (see :meth:`Clients.refresh`) and close the streams of clients
        no longer accepted; how many were closed."""
        if self.clients is None or not self.clients.refresh(now):
            return 0
        revoked = self.hub.revoke(self.clients.accepts)
        self.metrics.keep_clients(self.clients.names)
        return revoked

    def open_stream(
        self,
        symbols: frozenset[str] | None,
        resume: Positions | None,
        client: str | None = None,
        credential: bytes | None = None,
    ) -> StreamStart:
        """Register a client for ``symbols`` (None = all) from now, or from ``resume`` (a Last-Event-ID);
        ``client`` and ``credential`` name who opened it (with authentication on)."""
        covered = sorted({self.partition_of(s) for s in symbols}) if symbols is not None else list(self.partitions)
        positions: Positions = {}
        replay: list[Published] = []
        missed: list[int] = []
        ahead = False
        for partition in covered:
            ring = self.ring(partition)
            position = ring.head if resume is None else resume.get(partition)
            if position is None or not (ring.covers(position) or self._quiet_since(symbols, partition, position)):
                # Older than anything kept (or not named in the id): say so, and go on from the oldest kept.
                missed.append(partition)
                position = ring.floor - 1
            ahead = ahead or position > ring.head
            positions[partition] = position
            replay.extend(self._kept_after(symbols, partition, position))
        subscription = Subscription(symbols, positions, self.settings.gateway_client_buffer)
        subscription.client, subscription.credential = client, credential
        self.hub.add(subscription)
        if ahead:
            self._ahead[subscription] = time.monotonic()
        return StreamStart(subscription, replay, missed)

    def check_ahead(self, now: float) -> None:
        """Reset the streams still beyond what was read on a partition :data:`AHEAD_GRACE_S` after they opened
        (the stream's task sends the reset, see :meth:`rewind`); forget those that were reached or ended."""
        for subscription, opened in list(self._ahead.items()):
            beyond = [p for p, offset in subscription.positions.items() if offset > self.ring(p).head]
            if not beyond or subscription.dropped is not None or subscription not in self.hub:
                del self._ahead[subscription]
            elif now - opened >= AHEAD_GRACE_S:
                del self._ahead[subscription]
                subscription.beyond_end = beyond
                subscription.direct = None  # its task writes the reset before anything else
                subscription.wakeup.set()

    def rewind(self, subscription: Subscription, partitions: list[int]) -> list[Published]:
        """Move ``subscription`` on ``partitions`` back to before the oldest prediction kept; what it gets then."""
        replay: list[Published] = []
        for partition in partitions:
            position = subscription.positions[partition] = self.ring(partition).floor - 1
            replay.extend(self._kept_after(subscription.symbols, partition, position))
        return replay

    def _kept_after(self, symbols: frozenset[str] | None, partition: int, position: int) -> list[Published]:
        return [item for item in self.ring(partition).after(position) if symbols is None or item.symbol in symbols]

    def _quiet_since(self, symbols: frozenset[str] | None, partition: int, position: int) -> bool:
        """Whether no prediction of ``symbols`` on ``partition`` came after offset ``position``: each is held at
        or before it (the cache holds every symbol's latest, read in order since this gateway started before
        it), or is not held although this gateway read everything after ``position`` and never dropped a
        symbol from its cache. Then a ring that moved past ``position`` lost nothing such a client wants: a
        quiet symbol on a busy partition is no reason for a reset."""
        if symbols is None:
            return False
        read_all_since = position + 1 >= self.ring(partition).first and not self.cache.evicted
        for symbol in symbols:
            if self.partition_of(symbol) == partition:
                held = self.cache.get(symbol)
                if held is None:
                    if not read_all_since:
                        return False
                elif held.partition != partition or held.offset > position:
                    return False
        return True


def skip_failed(metrics: GatewayMetrics, topic: str, partition: int, offset: int, stage: str, exc: Exception) -> None:
    """Count and log one record whose ``stage`` (decode, apply) raised what nothing foresaw; it is skipped, and
    reading goes on. One line without a traceback: a producer writing many such records would flood the log."""
    metrics.refused.labels("failed").inc()
    log.warning(
        "gateway_record_failed",
        topic=topic,
        partition=partition,
        offset=offset,
        stage=stage,
        error=f"{type(exc).__name__}: {exc}",
    )
