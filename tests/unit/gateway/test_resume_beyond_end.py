"""A stream resumed beyond what the gateway has read: waited for while another replica may be ahead, then reset."""

from __future__ import annotations

import asyncio
import json
import time

from tests.unit.gateway.fakes import make_feed, publish
from tests.unit.gateway.test_fanout import offsets_of, take
from tickcast.gateway.feed import AHEAD_GRACE_S
from tickcast.gateway.sse import stream_events


def test_a_position_beyond_the_topics_end_gets_a_reset_once_the_grace_for_a_replica_ahead_is_over() -> None:
    # The predictions topic was deleted and recreated (or the id is another cluster's): the client's offset 1000
    # is one this topic never had. The stream waited silently for offsets up to it, skipping 5 and every new one.
    async def scenario() -> None:
        feed = make_feed(partitions=1, gateway_ring_size=3)
        publish(feed, *["SPY"] * 5)  # offsets 0-4 of the recreated topic
        stream = stream_events(feed, feed.open_stream(None, {0: 1000}))
        opened = time.monotonic()
        assert b"id: 0:1000" in await anext(stream)
        publish(feed, "SPY")  # offset 5: the ring keeps 3-5
        feed.check_ahead(opened + AHEAD_GRACE_S / 2)  # another replica may be a little ahead: not yet
        feed.check_ahead(opened + AHEAD_GRACE_S)
        events = await take(stream, 4)
        assert events[0]["event"] == "reset", f"no reset for a position beyond the end: {events[0]}"
        assert json.loads(events[0]["data"]) == {
            "partitions": [0],
            "reason": "resume position beyond the end of the predictions topic",
        }
        assert events[0]["id"] == "0:2"
        assert offsets_of(events[1:]) == [3, 4, 5]
        publish(feed, "SPY")
        assert offsets_of(await take(stream, 1)) == [6]

    asyncio.run(scenario())


def test_a_position_a_little_ahead_of_this_replica_is_waited_for_without_a_reset() -> None:
    # A client that another replica served up to offset 6 comes here, where 5 and 6 are not read yet.
    async def scenario() -> None:
        feed = make_feed(partitions=1, gateway_ring_size=3)
        publish(feed, *["SPY"] * 5)
        stream = stream_events(feed, feed.open_stream(None, {0: 6}))
        opened = time.monotonic()
        await anext(stream)
        publish(feed, "SPY", "SPY", "SPY")  # 5 and 6, which it had, then 7
        feed.check_ahead(opened + AHEAD_GRACE_S)
        events = await take(stream, 1)
        assert [event["event"] for event in events] == ["prediction"] and offsets_of(events) == [7], events

    asyncio.run(scenario())
