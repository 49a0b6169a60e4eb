"""``TickcastClient``: ``async for p in client.subscribe(["SPY", "BAC"])``, and ``await client.latest("SPY")``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from tickcast.client.records import PredictionRecord
from tickcast.client.settings import ClientSettings
from tickcast.client.sources import GatewaySource, Item, KafkaSource, Reset, Source
from tickcast.client.tracking import ClientStats, GapCallback, StaleCallback, Tracker
from tickcast.common.validation import SYMBOL_PATTERN

#: How often, at most, stale symbols are looked for.
STALE_CHECK_S = 0.5


class TickcastClient:
    """Typed, deduplicated predictions from one source (Kafka or a gateway), the same API for both.

    ``on_gap(topic, partition, first_missing, next_seen)`` and ``on_stale(symbol, seconds)`` are called as
    they happen; :attr:`stats` counts them too (and duplicates dropped, resets, reconnects). After a gateway's
    ``reset``, the newest prediction of each symbol that was among the missed ones is refetched and yielded.
    """

    def __init__(
        self,
        source: Source,
        stale_after_s: float = 10.0,
        on_gap: GapCallback | None = None,
        on_stale: StaleCallback | None = None,
    ) -> None:
        self.source = source
        self.stale_after_s = stale_after_s
        self.on_gap = on_gap
        self.on_stale = on_stale
        self.stats = ClientStats()
        self._latest: dict[str, PredictionRecord] = {}

    @classmethod
    def kafka(
        cls,
        settings: ClientSettings | None = None,
        from_beginning: bool = False,
        on_gap: GapCallback | None = None,
        on_stale: StaleCallback | None = None,
    ) -> TickcastClient:
        """Read the predictions topic directly (``TICKCAST_BOOTSTRAP_SERVERS`` etc. when ``settings`` is None)."""
        settings = settings or ClientSettings()
        return cls(KafkaSource(settings, from_beginning), settings.client_stale_after_s, on_gap, on_stale)

    @classmethod
    def gateway(
        cls,
        url: str,
        stale_after_s: float = 10.0,
        on_gap: GapCallback | None = None,
        on_stale: StaleCallback | None = None,
        token: str | None = None,
        ca_file: Path | str | None = None,
    ) -> TickcastClient:
        """Read a gateway's SSE stream (and its ``/v1/predictions/{symbol}`` for :meth:`latest`); ``token``: the
        bearer token of a gateway with a clients file; ``ca_file``: the CAs (PEM) an ``https://`` gateway's
        certificate is verified against, instead of the system's."""
        source = GatewaySource(url, token=token, ca_file=Path(ca_file) if ca_file is not None else None)
        return cls(source, stale_after_s, on_gap, on_stale)

    @classmethod
    def from_settings(
        cls,
        settings: ClientSettings,
        from_beginning: bool = False,
        on_gap: GapCallback | None = None,
        on_stale: StaleCallback | None = None,
    ) -> TickcastClient:
        """A gateway client if ``TICKCAST_CLIENT_GATEWAY_URL`` is set, else a Kafka client."""
        if settings.client_gateway_url:
            token = settings.client_gateway_token
            source = GatewaySource(
                settings.client_gateway_url,
                settings.client_reconnect_max_s,
                token=token.get_secret_value() if token is not None else None,
                ca_file=settings.client_gateway_ca_file,
            )
            return cls(source, settings.client_stale_after_s, on_gap, on_stale)
        return cls.kafka(settings, from_beginning, on_gap, on_stale)

    async def latest(self, symbol: str) -> PredictionRecord | None:
        """The newest prediction of ``symbol`` the source has, or None."""
        _check([symbol])
        return await self.source.latest(symbol)

    async def subscribe(
        self, symbols: Iterable[str] | None = None, idle_timeout_s: float | None = None
    ) -> AsyncIterator[PredictionRecord]:
        """New predictions of ``symbols`` (None = all), each once, in order per partition; until cancelled,
        or until nothing came for ``idle_timeout_s``."""
        wanted = frozenset(_check(symbols)) if symbols is not None else None
        if wanted is not None and not wanted:
            # Else a gateway streamed every prediction for all of them to be dropped, and Kafka read nothing.
            raise ValueError("symbols is empty: name at least one symbol, or None for all")
        tracker = Tracker(wanted, self.stale_after_s, self.on_gap, self.on_stale)
        self.stats = tracker.stats
        queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=10_000)
        task = asyncio.create_task(self.source.run(wanted, queue))
        idle_since = last_check = time.monotonic()
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), STALE_CHECK_S)
                except TimeoutError:
                    item = None
                now = time.monotonic()
                if now - last_check >= STALE_CHECK_S:
                    tracker.check_stale()
                    last_check = now
                if item is None:
                    if task.done():
                        task.result()  # the source failed: its error, not a silent end
                        return
                    if idle_timeout_s is not None and now - idle_since > idle_timeout_s:
                        return
                    continue
                if isinstance(item, Reset):
                    tracker.reset(item.missed)
                    continue
                record = item.record
                if not tracker.accept(record, item.complete):
                    continue  # a duplicate, or another symbol of a partition read whole
                idle_since = now
                self._latest[record.symbol] = record
                yield record
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if isinstance(self.source, GatewaySource):
                self.stats.reconnects = self.source.reconnects

    def seen(self, symbol: str) -> PredictionRecord | None:
        """The last prediction of ``symbol`` this client yielded (no I/O)."""
        return self._latest.get(symbol)


def _check(symbols: Iterable[str]) -> list[str]:
    names = list(symbols)
    for name in names:
        if not SYMBOL_PATTERN.fullmatch(name):
            raise ValueError(f"symbol {name[:40]!r} does not match {SYMBOL_PATTERN.pattern}")
    return names
