"""The hot GET answered in uvicorn's HTTP protocol: byte for byte what the ASGI path answers, and only when safe.

Two real uvicorn servers over one app and one feed, one with :class:`HotGetProtocol` and one with uvicorn's own
httptools protocol, get the same raw requests; their answers must be identical but for the ``date`` header.
If uvicorn changes an internal this relies on, these fail (the protocol errors, or the bytes differ).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tests.unit.gateway.fakes import make_feed, publish
from tickcast.gateway.app import create_app
from tickcast.gateway.cache import Published
from tickcast.gateway.feed import PredictionFeed
from tickcast.gateway.hotget import HotGetProtocol, hot_get_protocol
from tickcast.testing.http_thread import get, port_of, read_answer, serving

_DATE = re.compile(rb"^date: [^\r]*\r\n", re.MULTILINE)


@contextmanager
def serving_feed(
    feed: PredictionFeed, http: type[HttpToolsProtocol], keep_alive_s: int = 5
) -> Iterator[uvicorn.Server]:
    """The gateway app of ``feed`` in a real uvicorn, with the hot protocol or uvicorn's own."""
    clock = lambda: 1_000.0  # noqa: E731 # one instant for both servers, so age_ms is the same
    protocol = hot_get_protocol(feed, clock) if http is HotGetProtocol else http
    with serving(create_app(feed, clock=clock), protocol, keep_alive_s) as server:
        yield server


def exchange(port: int, raw: bytes, answers: int = 1) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn, conn.makefile("rb") as reader:
        conn.sendall(raw)
        head_only = raw.startswith(b"HEAD ")
        return b"".join(_DATE.sub(b"", read_answer(reader, head_only)) for _ in range(answers))


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[int, int, Published]]:
    """(hot port, plain port, the held prediction of SPY)."""
    feed = make_feed()
    (item,) = publish(feed, "SPY")
    with serving_feed(feed, HotGetProtocol) as hot, serving_feed(feed, HttpToolsProtocol) as plain:
        yield port_of(hot), port_of(plain), item


HOT = [
    get("/v1/predictions/SPY"),
    get("/v1/predictions/SPY", 'If-None-Match: "x", W/"{etag}"'),
    get("/v1/predictions/SPY", "If-None-Match: *"),
    get("/v1/predictions/SPY", 'If-None-Match: "0:0"'),
    get("/v1/predictions/SPY", "Connection: keep-alive", "User-Agent: t"),
]
PASSED_ON = [
    get("/v1/predictions/NOPE"),
    get("/v1/predictions/spy"),
    get("/v1/predictions/SPY?x=1"),
    get("/v1/predictions/S%50Y"),
    get("/v1/predictions/SPY", "If-None-Match: " + "x" * 2_000),
    get("/v1/predictions/SPY", "Content-Length: 0"),
    get("/v1/predictions/SPY", "Connection: close"),
    get("/v1/predictions/SPY", version="1.0"),
    b"HEAD /v1/predictions/SPY HTTP/1.1\r\nHost: test\r\n\r\n",
    get("/v1/symbols"),
]


@pytest.mark.parametrize("raw", HOT + PASSED_ON)
def test_every_answer_is_the_same_bytes_as_the_asgi_paths(raw: bytes, servers: tuple[int, int, Published]) -> None:
    hot, plain, item = servers
    raw = raw.replace(b"{etag}", item.etag.strip(b'"'))
    before = HotGetProtocol.answered
    assert exchange(hot, raw) == exchange(plain, raw)
    answered_here = HotGetProtocol.answered - before
    assert answered_here == (1 if raw in [r.replace(b"{etag}", item.etag.strip(b'"')) for r in HOT] else 0)


def test_pipelined_requests_are_answered_in_order_whichever_path_answers_each(
    servers: tuple[int, int, Published],
) -> None:
    hot, plain, _ = servers
    raw = get("/v1/symbols") + get("/v1/predictions/SPY") + get("/v1/predictions/NOPE") + get("/v1/predictions/SPY")
    answer = exchange(hot, raw, answers=4)
    assert answer == exchange(plain, raw, answers=4)
    assert [int(code) for code in re.findall(rb"HTTP/1.1 (\d+)", answer)] == [200, 200, 404, 200]


def test_a_connection_answered_here_stays_open_and_is_closed_after_the_keep_alive_timeout() -> None:
    feed = make_feed()
    publish(feed, "SPY")
    with serving_feed(feed, HotGetProtocol, keep_alive_s=1) as server:
        before = (HotGetProtocol.answered, server.server_state.total_requests)
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as conn, conn.makefile("rb") as reader:
            for _ in range(3):
                conn.sendall(get("/v1/predictions/SPY"))
                assert read_answer(reader).startswith(b"HTTP/1.1 200 OK\r\n")
            assert (HotGetProtocol.answered, server.server_state.total_requests) == (before[0] + 3, before[1] + 3)
            # uvicorn's keep-alive timer was armed by the last answer: the server closes the idle connection.
            assert reader.read(1) == b"", "the idle connection was not closed after the keep-alive timeout"
