"""The SSE wire format of one event: what a stream writes, whether through its task or straight from the hub."""

from __future__ import annotations

from tickcast.gateway.cache import Published
from tickcast.gateway.positions import Positions, encode


def frame(event: str, data: str, event_id: str | None = None) -> str:
    """One SSE event.

    >>> frame("prediction", '{"a":1}', "0:5")
    'id: 0:5\\nevent: prediction\\ndata: {"a":1}\\n\\n'
    """
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def prediction_frame(item: Published, positions: Positions) -> bytes:
    """The event of ``item`` for a client now at ``positions`` (after ``item``).

    A stream over one partition has the id ``partition:offset`` of the item itself, the same for every client,
    so its frame was encoded once when the item arrived; only a stream over several partitions has an id of its
    own (every partition's position), built here.

    >>> item = Published(1, 5, "A", 0.0, 0.0, '{"a":1}')
    >>> prediction_frame(item, {1: 5}) == item.sse_frame, prediction_frame(item, {0: 3, 1: 5})[:18]
    (True, b'id: 0:3,1:5\\nevent:')
    """
    if len(positions) == 1:
        return item.sse_frame
    return frame("prediction", item.body, encode(positions)).encode()
