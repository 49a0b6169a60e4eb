"""The SSE wire format of the gateway's stream, and the loop that feeds one client from its subscription.

Events: ``prediction`` (data: the prediction's JSON), ``reset`` (data: the partitions whose missed
predictions are gone; the client must refetch latest values), ``dropped`` (data: why the gateway closes this
stream; reconnect with the last id to resume). Every event's ``id`` is the stream's position (see
:mod:`tickcast.gateway.positions`); a stream without a reset starts with its ``retry`` line and its position
as an id, in a block without data that SSE clients take the id from without dispatching an event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable, Mapping

import structlog
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tickcast.gateway.fastpath import DIRECT_WRITE, SERVER_SEND
from tickcast.gateway.feed import PredictionFeed, StreamStart
from tickcast.gateway.frames import frame, prediction_frame
from tickcast.gateway.hub import KEEPALIVE, DropReason, Subscription
from tickcast.gateway.positions import encode

log = structlog.get_logger("tickcast.gateway")
#: What the browser's EventSource waits before reconnecting (ms).
RETRY_MS = 1000
#: Events written to a connection in one chunk at most (a client's whole queue, unless it is a long backlog).
BATCH = 256


async def stream_events(
    feed: PredictionFeed, start: StreamStart, direct: Callable[[bytes], bool] | None = None
) -> AsyncGenerator[bytes, None]:
    """The bytes of one client's stream: a reset if it missed data for good, the replay, then live events.

    Whatever queued up for the client while it waited goes out as one chunk (one write to its connection).
    With ``direct`` (a writer to the client's connection that says whether it took the bytes), live events
    that find the stream idle are written by the hub itself, and only what queued goes through here.
    """
    subscription, metrics = start.subscription, feed.metrics
    try:
        if start.missed:
            yield f"retry: {RETRY_MS}\n\n".encode()
            yield _reset(start.missed, "resume position older than the gateway keeps", subscription.positions)
        else:
            # The stream's position from its first line (an event with no data: the client keeps its id): a client
            # cut off before its first event resumes from here, not from wherever the stream is when it comes
            # back, which lost what was published meanwhile. Not with a reset, which must come with its id.
            yield f"retry: {RETRY_MS}\nid: {encode(subscription.positions)}\n\n".encode()
        positions = subscription.positions
        chunk = [prediction_frame(item, positions) for item in start.replay if subscription.advance(item)]
        if chunk:
            yield b"".join(chunk)
        queue = subscription.queue
        while True:
            if subscription.beyond_end:
                partitions, subscription.beyond_end = subscription.beyond_end, []
                replay = feed.rewind(subscription, partitions)
                yield _reset(partitions, "resume position beyond the end of the predictions topic", positions)
                chunk = [prediction_frame(item, positions) for item in replay if subscription.advance(item)]
                if chunk:
                    yield b"".join(chunk)
                continue
            if queue:
                parts: list[bytes] = []
                oldest = queue[0].received_at
                while queue and len(parts) < BATCH:
                    item = queue.popleft()
                    if subscription.advance(item):
                        parts.append(prediction_frame(item, positions))
                if parts:
                    # One observation per write, of its oldest event: what the histogram bounds is the wait.
                    metrics.delay.observe(time.monotonic() - oldest)
                    metrics.events.inc(len(parts))
                    yield b"".join(parts)
                continue
            if subscription.dropped == DropReason.GONE:
                return  # nobody to tell
            if subscription.dropped is not None:
                reason = json.dumps({"reason": subscription.dropped, "resume": "reconnect with Last-Event-ID"})
                yield frame("dropped", reason, encode(positions)).encode()
                return
            if subscription.keepalive_due:
                subscription.keepalive_due = False
                yield KEEPALIVE
                continue  # events may have queued while that was written
            subscription.wakeup.clear()
            # Everything yielded so far was written (the caller asks for the next chunk only then), and nothing
            # is queued: from now until the wake-up, the hub may write to the connection itself.
            subscription.direct = direct
            # No timeout per wait: a timer per client per wake was a sixth of the fan-out's CPU with 1,000
            # clients. The hub's one keepalive sweep (Hub.keep_alive) wakes every client instead.
            await subscription.wakeup.wait()
            subscription.direct = None
    finally:
        feed.hub.remove(subscription)


def _reset(partitions: list[int], reason: str, positions: dict[int, int]) -> bytes:
    return frame("reset", json.dumps({"partitions": partitions, "reason": reason}), encode(positions)).encode()


class EventStream(Response):
    """The stream's HTTP response, hand-written: the same status and headers as Starlette's StreamingResponse,
    but each chunk goes to the server's own ``send``, or, when the server left a direct writer in the scope
    (:data:`~tickcast.gateway.fastpath.DIRECT_WRITE`, :class:`~tickcast.gateway.hotget.HotGetProtocol`),
    live events are written by the hub straight to the connection while the stream is idle.

    Starlette's response passed every chunk through the send wrappers of FastAPI's middleware and exception
    handlers (a coroutine each, per write, per client), which only look at the response's start; and
    watched for the disconnect in an extra task group per client. Here the start goes through them (so they
    know a response began), the body straight to the server (:data:`SERVER_SEND`, left in the scope by
    :class:`~tickcast.gateway.fastpath.FastPath`), and one plain task per client waits for the disconnect.
    """

    media_type = "text/event-stream"

    def __init__(self, feed: PredictionFeed, start: StreamStart, headers: Mapping[str, str]) -> None:
        self.feed, self.start = feed, start
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        write: Send = scope.get(SERVER_SEND, send)
        watcher = asyncio.create_task(_close_when_gone(receive, self.start.subscription))
        events = stream_events(self.feed, self.start, scope.get(DIRECT_WRITE))
        try:
            async for chunk in events:
                await write({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            watcher.cancel()
            await events.aclose()
            subscription = self.start.subscription
            if subscription.client is not None:
                log.info("gateway_stream_closed", client=subscription.client, reason=subscription.dropped or "ended")
        await write({"type": "http.response.body", "body": b"", "more_body": False})


async def _close_when_gone(receive: Receive, subscription: Subscription) -> None:
    """End the client's stream when its connection closes (the server's send drops writes to it silently)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    subscription.drop(DropReason.GONE)
