"""The SSE wire format of the gateway's stream, and the loop that feeds one client from its subscription.

Events: ``prediction`` (data: the prediction's JSON), ``reset`` (data: the partitions whose missed
predictions are gone; the client must refetch latest values), ``dropped`` (data: why the gateway closes this
stream; reconnect with the last id to resume). Every event's ``id`` is the stream's position (see
:mod:`tickcast.gateway.positions`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from tickcast.gateway.feed import PredictionFeed, StreamStart
from tickcast.gateway.positions import encode

#: What the browser's EventSource waits before reconnecting (ms).
RETRY_MS = 1000
#: Events written to a connection in one chunk at most: fewer, larger writes when a client has a backlog.
BATCH = 64


def frame(event: str, data: str, event_id: str | None = None) -> str:
    """One SSE event.

    >>> frame("prediction", '{"a":1}', "0:5")
    'id: 0:5\\nevent: prediction\\ndata: {"a":1}\\n\\n'
    """
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


async def stream_events(feed: PredictionFeed, start: StreamStart, keepalive_s: float) -> AsyncIterator[str]:
    """The text of one client's stream: a reset if it missed data for good, the replay, then live events."""
    subscription, metrics = start.subscription, feed.metrics
    try:
        yield f"retry: {RETRY_MS}\n\n"
        if start.missed:
            detail = {"partitions": start.missed, "reason": "resume position older than the gateway keeps"}
            yield frame("reset", json.dumps(detail), encode(subscription.positions))
        chunk = [
            frame("prediction", item.body, encode(subscription.positions))
            for item in start.replay
            if subscription.advance(item)
        ]
        if chunk:
            yield "".join(chunk)
        while True:
            if subscription.queue:
                parts: list[str] = []
                now = time.monotonic()
                while subscription.queue and len(parts) < BATCH:
                    item = subscription.queue.popleft()
                    if subscription.advance(item):
                        parts.append(frame("prediction", item.body, encode(subscription.positions)))
                        metrics.delay.observe(now - item.received_at)
                metrics.events.inc(len(parts))
                if parts:
                    yield "".join(parts)
                continue
            if subscription.dropped is not None:
                reason = json.dumps({"reason": subscription.dropped, "resume": "reconnect with Last-Event-ID"})
                yield frame("dropped", reason, encode(subscription.positions))
                return
            subscription.wakeup.clear()
            try:
                await asyncio.wait_for(subscription.wakeup.wait(), keepalive_s)
            except TimeoutError:
                yield ": keepalive\n\n"
    finally:
        feed.hub.remove(subscription)
