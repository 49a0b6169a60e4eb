"""Fan-out: a slow client is dropped without slowing the others, and resumes from its last id with no gap."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from tests.unit.gateway.fakes import make_feed, prediction, publish
from tickcast.gateway.cache import Published
from tickcast.gateway.feed import PredictionFeed
from tickcast.gateway.positions import decode
from tickcast.gateway.sse import stream_events


def parse(chunks: list[bytes]) -> list[dict[str, str]]:
    """The events of an SSE text (comments and retry lines left out)."""
    events = []
    for block in b"".join(chunks).decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            events.append(fields)
    return events


async def take(stream: AsyncIterator[bytes], count: int) -> list[dict[str, str]]:
    """Read ``stream`` until ``count`` more events came (within 5 s)."""
    chunks: list[bytes] = []
    async with asyncio.timeout(5):
        while len(parse(chunks)) < count:
            chunks.append(await anext(stream))
    return parse(chunks)


def offsets(events: list[dict[str, str]]) -> list[tuple[int, int]]:
    return [
        (data["partition"], data["offset"])
        for event in events
        if event["event"] == "prediction" and (data := json.loads(event["data"]))
    ]


def test_a_client_that_falls_behind_is_dropped_and_the_others_get_everything() -> None:
    async def scenario() -> None:
        feed = make_feed(partitions=4, gateway_client_buffer=5)
        fast = stream_events(feed, feed.open_stream(None, None))
        slow = stream_events(feed, feed.open_stream(None, None))
        await anext(fast), await anext(slow)  # the retry lines: both are connected now
        received: list[dict[str, str]] = []
        symbols = ["SPY", "BAC", "KO", "IBM"]
        for round_ in range(10):
            publish(feed, *symbols)  # 4 events per round; the slow client never reads, its 5 slots fill
            received += await take(fast, 4)
            assert len(feed.hub) == (2 if round_ == 0 else 1), "the slow client should be out after its buffer filled"
        assert len(received) == 40
        assert len(set(offsets(received))) == 40
        slow_events = await take(slow, 1)
        assert slow_events[-1]["event"] == "dropped"
        assert json.loads(slow_events[-1]["data"])["reason"] == "slow_consumer"
        dropped = feed.metrics.registry.get_sample_value(
            "tickcast_gateway_clients_dropped_total", {"reason": "slow_consumer"}
        )
        assert dropped == 1

        # It comes back with the id of its last event: every prediction it missed, once, then live ones.
        resumed = stream_events(feed, feed.open_stream(None, decode(slow_events[-1]["id"])))
        replayed = await take(resumed, 40)
        assert sorted(offsets(replayed)) == sorted(offsets(received))
        publish(feed, "SPY")
        live = replayed + await take(resumed, 1)
        assert len(set(offsets(live))) == 41

    asyncio.run(scenario())


def test_a_one_symbol_stream_id_is_partition_colon_offset_and_resumes_without_gap_or_duplicate() -> None:
    async def scenario() -> None:
        feed: PredictionFeed = make_feed(partitions=4)
        stream = stream_events(feed, feed.open_stream(frozenset({"SPY"}), None))
        for _ in range(3):
            publish(feed, "SPY", "BAC")
        first = await take(stream, 3)
        partition = feed.partition_of("SPY")
        assert [e["id"] for e in first] == [f"{partition}:{o}" for o in offsets_of(first)]
        await stream.aclose()
        for _ in range(2):
            publish(feed, "SPY", "BAC")
        again = stream_events(feed, feed.open_stream(frozenset({"SPY"}), decode(first[1]["id"])))
        events = await take(again, 3)  # the third of before, and the two since
        assert offsets_of(events) == sorted(set(offsets_of(events)))
        assert offsets_of(events)[0] == offsets_of(first)[2]
        assert all(json.loads(e["data"])["symbol"] == "SPY" for e in events)

    asyncio.run(scenario())


def test_a_position_older_than_the_ring_gets_an_explicit_reset() -> None:
    async def scenario() -> None:
        feed = make_feed(partitions=1, gateway_ring_size=3)
        for _ in range(10):
            publish(feed, "SPY")
        stream = stream_events(feed, feed.open_stream(None, {0: 2}))
        events = await take(stream, 4)
        assert events[0]["event"] == "reset"
        assert json.loads(events[0]["data"])["partitions"] == [0]
        assert offsets_of(events[1:]) == [7, 8, 9]

    asyncio.run(scenario())


def offsets_of(events: list[dict[str, str]]) -> list[int]:
    return [offset for _, offset in offsets(events)]


def test_an_idle_stream_gets_the_hubs_keepalive_and_a_busy_one_gets_its_events_in_one_chunk() -> None:
    async def scenario() -> None:
        feed = make_feed(partitions=4)
        idle = stream_events(feed, feed.open_stream(frozenset({"KO"}), None))
        busy = stream_events(feed, feed.open_stream(frozenset({"SPY"}), None))
        await anext(idle), await anext(busy)  # the retry lines
        sweep = asyncio.create_task(feed.hub.keep_alive(0.05))
        try:
            async with asyncio.timeout(5):
                assert await anext(idle) == b": keepalive\n\n"
            sent = [item for _ in range(5) for item in publish(feed, "SPY")]
            async with asyncio.timeout(5):
                chunk = await anext(busy)
            while chunk.startswith(b":"):  # a keepalive that came first
                chunk = await anext(busy)
            assert chunk == b"".join(item.sse_frame for item in sent), "five events queued, one write expected"
        finally:
            sweep.cancel()

    asyncio.run(scenario())


class Connection:
    """A client connection as the hub writes to it directly: takes bytes while ``open``, refuses them otherwise."""

    def __init__(self) -> None:
        self.open = True
        self.written: list[bytes] = []

    def write(self, data: bytes) -> bool:
        if self.open:
            self.written.append(data)
        return self.open


def test_an_idle_stream_gets_live_events_written_by_the_hub_and_a_full_connection_queues_them_in_order() -> None:
    async def scenario() -> None:
        feed = make_feed(partitions=4, gateway_client_buffer=50)
        connection = Connection()
        stream = stream_events(feed, feed.open_stream(frozenset({"SPY", "BAC"}), None), connection.write)
        assert (await anext(stream)).startswith(b"retry:")
        pending = asyncio.ensure_future(anext(stream))  # the stream's task, waiting with nothing queued
        await asyncio.sleep(0)  # let it reach its wait (not a synchronisation: it runs no other task)
        publish(feed, "SPY", "BAC", "SPY")
        assert not pending.done(), "events for an idle stream should not wake its task"
        direct = parse(connection.written)
        assert len(direct) == 3
        assert feed.metrics.registry.get_sample_value("tickcast_gateway_events_fanned_out_total") == 3

        connection.open = False  # the client stops reading: its connection's buffer is full
        publish(feed, "BAC", "SPY")
        connection.open = True  # it drains, but the queue goes first: order is kept
        publish(feed, "SPY")
        async with asyncio.timeout(5):
            queued = parse([await pending])
        assert len(queued) == 3, "the two refused and the one after them, in one write by the task"
        pending = asyncio.ensure_future(anext(stream))  # the queue was written: the task waits again
        await asyncio.sleep(0)
        publish(feed, "BAC", "SPY")
        assert not pending.done() and len(connection.written) == 5, "the hub writes again"
        events = direct + queued + parse(connection.written[3:])
        assert len(events) == 8
        assert len(set(offsets(events))) == 8, "no gap, no duplicate"
        per_partition: dict[int, list[int]] = {}
        for partition, offset in offsets(events):
            per_partition.setdefault(int(partition), []).append(int(offset))
        assert all(found == sorted(found) for found in per_partition.values()), per_partition
        pending.cancel()

    asyncio.run(scenario())


def test_a_client_whose_connection_stays_full_is_dropped_with_its_reason_and_resumes_from_its_last_id() -> None:
    async def scenario() -> None:
        feed = make_feed(partitions=4, gateway_client_buffer=3)
        full, fine = Connection(), Connection()
        full.open = False
        slow = stream_events(feed, feed.open_stream(None, None), full.write)
        fast = stream_events(feed, feed.open_stream(None, None), fine.write)
        await anext(slow), await anext(fast)
        waiting = asyncio.ensure_future(anext(fast))
        await asyncio.sleep(0)  # both streams reach their wait (not a synchronisation)
        for _ in range(5):
            publish(feed, "SPY", "BAC")
        assert len(parse(fine.written)) == 10 and not waiting.done()
        assert len(feed.hub) == 1
        async with asyncio.timeout(5):
            events = parse([await anext(slow)])
        assert [e["event"] for e in events] == ["dropped"]
        assert json.loads(events[0]["data"])["reason"] == "slow_consumer"
        resumed = stream_events(feed, feed.open_stream(None, decode(events[0]["id"])))
        assert sorted(offsets(await take(resumed, 10))) == sorted(offsets(parse(fine.written)))
        waiting.cancel()

    asyncio.run(scenario())


def broken_connection(data: bytes) -> bool:
    """A connection whose write raises (a transport torn down under the stream, a bug in the writer)."""
    raise RuntimeError("the transport is gone")


def test_a_client_whose_connection_raises_is_dropped_and_the_clients_after_it_still_get_the_event() -> None:
    async def scenario() -> None:
        feed = make_feed(partitions=4)
        fine = [Connection() for _ in range(3)]
        streams = [stream_events(feed, feed.open_stream(None, None), c.write) for c in fine]
        broken = stream_events(feed, feed.open_stream(None, None), broken_connection)
        for stream in [*streams, broken]:
            await anext(stream)
        waiting = [asyncio.ensure_future(anext(stream)) for stream in [*streams, broken]]
        await asyncio.sleep(0)  # every stream reaches its wait (not a synchronisation)
        publish(feed, "SPY")
        registry = feed.metrics.registry
        failed = registry.get_sample_value("tickcast_gateway_records_refused_total", {"reason": "failed"})
        dropped = registry.get_sample_value("tickcast_gateway_clients_dropped_total", {"reason": "write_failed"})
        got = [len(parse(c.written)) for c in fine]
        assert (got, failed, dropped, len(feed.hub)) == ([1, 1, 1], 0, 1, 3), "each fine client gets the event"
        async with asyncio.timeout(5):
            events = parse([await waiting[-1]])
        assert [e["event"] for e in events] == ["dropped"]
        assert json.loads(events[0]["data"])["reason"] == "write_failed"
        publish(feed, "BAC")
        assert [len(parse(c.written)) for c in fine] == [2, 2, 2]
        for pending in waiting[:-1]:
            pending.cancel()

    asyncio.run(scenario())


def test_the_keepalive_sweep_drops_a_client_whose_connection_raises_and_goes_on() -> None:
    async def scenario() -> None:
        feed = make_feed(partitions=4)
        idle = stream_events(feed, feed.open_stream(None, None))
        broken = stream_events(feed, feed.open_stream(None, None), broken_connection)
        await anext(idle), await anext(broken)
        waiting = asyncio.ensure_future(anext(broken))
        await asyncio.sleep(0)  # the broken stream reaches its wait (not a synchronisation)
        sweep = asyncio.create_task(feed.hub.keep_alive(0.01))
        try:
            async with asyncio.timeout(5):
                assert [await anext(idle), await anext(idle)] == [b": keepalive\n\n"] * 2, "a second sweep"
                events = parse([await waiting])
            assert json.loads(events[0]["data"])["reason"] == "write_failed"
            dropped = feed.metrics.registry.get_sample_value(
                "tickcast_gateway_clients_dropped_total", {"reason": "write_failed"}
            )
            assert (dropped, len(feed.hub)) == (1, 1)
        finally:
            sweep.cancel()

    asyncio.run(scenario())


def test_an_event_read_long_ago_is_queued_for_the_streams_task_even_when_the_connection_takes_writes() -> None:
    async def scenario() -> None:
        feed = make_feed(partitions=1)
        connection = Connection()
        stream = stream_events(feed, feed.open_stream(None, None), connection.write)
        await anext(stream)
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)  # the stream reaches its wait (not a synchronisation)
        late = Published.of(0, 1, prediction("SPY", 1), time.monotonic() - 1.0)  # the gateway is a second behind
        feed.ingest([late])
        publish(feed, "SPY")  # fresh, but after a queued one: queued too, in order
        async with asyncio.timeout(5):
            queued = parse([await pending])
        assert offsets_of(queued) == [1, 2] and connection.written == []

    asyncio.run(scenario())


def test_an_event_read_a_little_late_is_still_written_by_the_hub_not_queued_for_the_task() -> None:
    # A loop sharing its core runs tens of ms late now and then: queueing then saves no write (a one-symbol
    # client has ~10 events/s) and costs each client a wake-up, which kept the fan-out behind.
    async def scenario() -> None:
        feed = make_feed(partitions=1)
        connection = Connection()
        stream = stream_events(feed, feed.open_stream(None, None), connection.write)
        await anext(stream)
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)  # the stream reaches its wait (not a synchronisation)
        feed.ingest([Published.of(0, 1, prediction("SPY", 1), time.monotonic() - 0.05)])
        assert not pending.done(), "an event 50 ms late should not wake the stream's task"
        assert offsets_of(parse(connection.written)) == [1]
        pending.cancel()

    asyncio.run(scenario())


def last_event_id(chunks: list[bytes]) -> str | None:
    """The id a client keeps from these chunks, as SSE says: every finished block's ``id`` field, data or not."""
    found = None
    for block in b"".join(chunks).decode().split("\n\n")[:-1]:
        for line in block.splitlines():
            if line.startswith("id: "):
                found = line.removeprefix("id: ")
    return found


def test_a_client_cut_off_before_its_first_event_resumes_with_what_was_published_meanwhile() -> None:
    async def scenario() -> None:
        feed = make_feed(partitions=4)
        publish(feed, "SPY", "KO", "SPY")
        stream = stream_events(feed, feed.open_stream(frozenset({"KO"}), None))
        opening = [await anext(stream)]  # connected; KO is quiet, so no event yet
        await stream.aclose()  # the connection drops (a proxy, the network)
        (missed,) = publish(feed, "KO")  # made while the client was away
        last = last_event_id(opening)
        again = stream_events(feed, feed.open_stream(frozenset({"KO"}), decode(last) if last else None))
        chunks: list[bytes] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):  # a replay is written at once, before any wait
                while not parse(chunks):
                    chunks.append(await anext(again))
        assert offsets(parse(chunks)) == [(missed.partition, missed.offset)], (
            f"the prediction made while the client was away never came (it reconnected with id {last!r})"
        )

    asyncio.run(scenario())


def test_a_quiet_symbols_client_whose_position_left_the_ring_gets_no_reset_when_it_missed_nothing() -> None:
    async def scenario() -> None:
        feed = make_feed(partitions=1, gateway_ring_size=3)
        publish(feed, "KO")
        stream = stream_events(feed, feed.open_stream(frozenset({"KO"}), None))
        opening = [await anext(stream)]
        await stream.aclose()
        publish(feed, *["SPY"] * 5)  # the partition moves on, KO stays quiet: its position leaves the ring
        last = last_event_id(opening)
        assert last is not None, "the stream's opening should name its position"
        again = stream_events(feed, feed.open_stream(frozenset({"KO"}), decode(last)))
        (kept,) = publish(feed, "KO")
        events = await take(again, 1)
        began = [e["event"] for e in events]
        assert began == ["prediction"], f"KO missed nothing, yet the stream began with {events[0]}"
        assert offsets(events) == [(kept.partition, kept.offset)]

    asyncio.run(scenario())


def test_a_symbol_without_any_prediction_yet_gets_no_reset_when_the_gateway_read_all_since_its_position() -> None:
    async def scenario() -> None:
        feed = make_feed(partitions=1, gateway_ring_size=3)
        stream = stream_events(feed, feed.open_stream(frozenset({"KO"}), None))  # KO has not traded yet
        opening = [await anext(stream)]
        await stream.aclose()
        publish(feed, *["SPY"] * 5)
        last = last_event_id(opening)
        assert last is not None, "the stream's opening should name its position"
        again = stream_events(feed, feed.open_stream(frozenset({"KO"}), decode(last)))
        publish(feed, "KO")
        events = await take(again, 1)
        began = [e["event"] for e in events]
        assert began == ["prediction"], f"KO missed nothing, yet the stream began with {events[0]}"

        # Once the gateway has dropped a symbol from its cache, a symbol it does not hold may have been that one.
        evicting = make_feed(partitions=1, gateway_ring_size=3, gateway_max_symbols=1)
        stream = stream_events(evicting, evicting.open_stream(frozenset({"KO"}), None))
        opening = [await anext(stream)]
        await stream.aclose()
        publish(evicting, "KO", *["SPY"] * 5)  # KO's prediction, then out of the cache and of the ring
        again = stream_events(evicting, evicting.open_stream(frozenset({"KO"}), decode(last_event_id(opening) or "")))
        assert [e["event"] for e in await take(again, 1)] == ["reset"], "KO's prediction was lost: a reset is due"

    asyncio.run(scenario())
