"""A fake prediction source for gateway tests: predictions made up in memory, fed straight into the feed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tickcast.common.records import Prediction
from tickcast.gateway.app import create_app
from tickcast.gateway.cache import Published
from tickcast.gateway.feed import PredictionFeed
from tickcast.gateway.hotget import hot_get_protocol
from tickcast.gateway.settings import GatewaySettings
from tickcast.gateway.tls import ServerTls, TlsFiles
from tickcast.testing.http_thread import loop_of, serving
from tickcast.testing.tls import ThrowawayCA


def prediction(symbol: str, source_offset: int, price: float = 100.0) -> Prediction:
    now_us = int(time.time() * 1_000_000)
    return Prediction(
        symbol, now_us // 1000, price, 1.5, price * 1.00015, 1, "READY", "linear", "3", source_offset,
        "ticks", 0, source_offset, now_us // 1000, now_us, "w-1", 2.5,
    )  # fmt: skip


def make_feed(partitions: int = 4, **settings: object) -> PredictionFeed:
    """A feed over ``partitions`` partitions, already caught up (ready), with nothing in it."""
    feed = PredictionFeed(GatewaySettings(partitions=partitions, **settings))  # type: ignore[arg-type]
    for partition in feed.partitions:
        feed.reached_end(partition, 0)
    return feed


def publish(feed: PredictionFeed, *symbols: str) -> list[Published]:
    """One prediction per symbol, at the next offset of its partition, as the Kafka source would hand them over."""
    items = []
    for symbol in symbols:
        partition = feed.partition_of(symbol)
        offset = feed.ring(partition).head + 1
        item = Published.of(partition, offset, prediction(symbol, offset), time.monotonic())
        feed.ingest([item])  # one by one: the next symbol may be on the same partition, at the next offset
        items.append(item)
    return items


def publish_on_loop(feed: PredictionFeed, server: Any, *symbols: str) -> list[Published]:
    """:func:`publish` run on ``server``'s event loop, as the Kafka source delivers, from a test's thread."""

    async def on_loop() -> list[Published]:
        return publish(feed, *symbols)

    return asyncio.run_coroutine_threadsafe(on_loop(), loop_of(server)).result(5)


@contextmanager
def https_gateway(ca: ThrowawayCA, *symbols: str) -> Iterator[tuple[PredictionFeed, Any]]:
    """(feed, server) of the gateway app with the hot protocol over HTTPS (``ca``'s certificate), holding
    one prediction of each of ``symbols``."""
    feed = make_feed()
    tls = ServerTls(TlsFiles(ca.server_cert, ca.server_key))
    with serving(create_app(feed, tls=tls), hot_get_protocol(feed), tls=tls.context) as server:
        publish_on_loop(feed, server, *symbols)
        yield feed, server
