"""The stream's hand-written response: Starlette's headers, body to the server's own send, closed on disconnect."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from starlette.types import Message

from tests.unit.gateway.fakes import make_feed, publish
from tickcast.gateway.app import create_app
from tickcast.gateway.fastpath import SERVER_SEND
from tickcast.gateway.hotget import hot_get_protocol
from tickcast.gateway.sse import EventStream
from tickcast.testing.http_thread import get, loop_of, port_of, read_head, serving
from tickcast.testing.waiting import wait_for


def test_a_stream_has_starlettes_headers_gets_its_events_and_leaves_the_hub_when_the_client_goes() -> None:
    feed = make_feed()
    with serving(create_app(feed), hot_get_protocol(feed)) as server:
        conn = socket.create_connection(("127.0.0.1", port_of(server)), timeout=5)
        with conn:
            conn.sendall(get("/v1/stream?symbols=SPY"))
            head, body = read_head(conn)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            for header in (
                b"content-type: text/event-stream; charset=utf-8",
                b"cache-control: no-store",
                b"x-accel-buffering: no",
                b"transfer-encoding: chunked",
            ):
                assert header in head.split(b"\r\n"), f"{header!r} missing from {head!r}"
            wait_for(lambda: len(feed.hub) == 1, 5, "the client in the hub")
            (item,) = asyncio.run_coroutine_threadsafe(_publish(feed, "SPY"), loop_of(server)).result(5)
            while item.sse_frame not in body:
                body += conn.recv(65536)
        wait_for(lambda: len(feed.hub) == 0, 5, "the hub to let go of a client whose connection closed")


async def _publish(feed: Any, *symbols: str) -> list[Any]:
    return publish(feed, *symbols)  # on the server's loop, as the Kafka source delivers


def test_the_body_goes_to_the_servers_own_send_and_only_the_start_through_the_app_stack() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        feed = make_feed()
        start = feed.open_stream(frozenset({"SPY"}), None)
        stacked: list[str] = []
        direct: list[str] = []
        incoming: asyncio.Queue[Message] = asyncio.Queue()
        await incoming.put({"type": "http.request", "body": b"", "more_body": False})

        async def through_stack(message: Message) -> None:
            stacked.append(message["type"])

        async def server_send(message: Message) -> None:
            direct.append(message["type"])
            if len(direct) == 2:  # the retry line and SPY's event: the client leaves
                await incoming.put({"type": "http.disconnect"})

        scope = {"type": "http", SERVER_SEND: server_send}
        response = EventStream(feed, start, headers={})
        running = asyncio.create_task(response(scope, incoming.get, through_stack))
        await asyncio.sleep(0)  # the stream starts and waits for events (not a synchronisation)
        publish(feed, "SPY")
        async with asyncio.timeout(5):
            await running
        return stacked, direct

    stacked, direct = asyncio.run(scenario())
    assert stacked == ["http.response.start"]
    assert direct == ["http.response.body"] * 3, "retry line, the event, and the end of the body"


def test_a_live_event_to_an_idle_stream_is_written_by_the_hub_in_uvicorns_chunked_framing() -> None:
    feed = make_feed()
    with (
        serving(create_app(feed), hot_get_protocol(feed)) as server,
        socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as conn,
    ):
        conn.sendall(get("/v1/stream?symbols=SPY"))
        _, body = read_head(conn)
        wait_for(lambda: len(feed.hub) == 1, 5, "the client in the hub")
        (subscription,) = feed.hub._clients
        wait_for(lambda: subscription.direct is not None, 5, "the idle stream to let the hub write to it")
        (item,) = asyncio.run_coroutine_threadsafe(_publish(feed, "SPY"), loop_of(server)).result(5)
        chunk = b"%x\r\n%b\r\n" % (len(item.sse_frame), item.sse_frame)
        while chunk not in body:
            body += conn.recv(65536)
        assert body.endswith(chunk)


def test_a_connection_that_stops_reading_is_dropped_with_its_reason_while_another_gets_every_event() -> None:
    # A client buffer larger than each burst: a loop running behind (events read more than DIRECT_WITHIN_S ago)
    # queues every event, and a burst of 100 into 8 places dropped the reading client too when the suite ran on
    # a loaded machine. What is tested is that the stuck client goes and the reading one gets every event.
    feed = make_feed(partitions=1, gateway_client_buffer=128)
    with serving(create_app(feed), hot_get_protocol(feed)) as server:
        port = port_of(server)
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        stuck.connect(("127.0.0.1", port))
        reader = socket.create_connection(("127.0.0.1", port), timeout=5)
        with stuck, reader:
            stuck.sendall(get("/v1/stream"))
            reader.sendall(get("/v1/stream"))
            _, got = read_head(reader)
            wait_for(lambda: len(feed.hub) == 2, 5, "both clients in the hub")
            sent: list[Any] = []
            for _ in range(100):  # ~65 KB a round; the stuck one's socket and write buffers fill in a few
                sent += asyncio.run_coroutine_threadsafe(_publish(feed, *["SPY"] * 100), loop_of(server)).result(5)
                while sent[-1].sse_frame not in got:
                    more = reader.recv(1 << 20)
                    assert more, f"the reading client was disconnected after {len(sent)} events: {got[-300:]!r}"
                    got += more
                if len(feed.hub) == 1:
                    break
            assert len(feed.hub) == 1, f"the stuck client was not dropped after {len(sent)} events"
            assert all(item.sse_frame in got for item in sent), "the reading client missed events"
            stuck.settimeout(5)
            backlog = b""
            while b"event: dropped" not in backlog:
                more = stuck.recv(1 << 20)
                assert more, f"closed without a dropped event: {backlog[-300:]!r}"
                backlog += more
            assert b'"reason": "slow_consumer"' in backlog
