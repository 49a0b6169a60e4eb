"""Every /v1 route of a real gateway server (hot-GET protocol included) refuses a request without, or with a
wrong, bearer token and serves one with a right token; /health, /metrics and the page stay open; a revoked
client's stream is closed; requests and streams are counted per client, and no token is echoed or logged."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from tests.unit.gateway.fakes import make_feed, publish
from tests.unit.gateway.test_auth import OTHER, TOKEN, write_clients
from tickcast.gateway.app import create_app
from tickcast.gateway.auth import client_line
from tickcast.gateway.feed import PredictionFeed
from tickcast.gateway.hotget import HotGetProtocol, hot_get_protocol
from tickcast.testing.http_thread import get, loop_of, port_of, read_answer, read_head, serving
from tickcast.testing.waiting import wait_for

#: A request of each /v1 route (the test below fails if the app has a /v1 route not named here).
URLS = {
    "/v1/predictions/{symbol}": "/v1/predictions/SPY",
    "/v1/predictions": "/v1/predictions?symbols=SPY,BAC",
    "/v1/symbols": "/v1/symbols",
    "/v1/pipeline": "/v1/pipeline",
    "/v1/stream": "/v1/stream?symbols=SPY",
}
#: Routes outside /v1, all open on purpose: probes, Prometheus, the page (no data) and the API's description.
OPEN = {"/health", "/metrics", "/", "/static", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
RIGHT = f"Authorization: Bearer {TOKEN}"
WRONG = f"Authorization: Bearer {TOKEN[:-1]}z"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[PredictionFeed, uvicorn.Server, Path]]:
    """A gateway with a clients file of desk-1 and desk-2, serving SPY and BAC, with the hot-GET protocol."""
    path = write_clients(tmp_path / "clients", [client_line("desk-1", TOKEN), client_line("desk-2", OTHER)])
    feed = make_feed(gateway_clients_file=path)
    publish(feed, "SPY", "BAC")
    with serving(create_app(feed), hot_get_protocol(feed)) as server:
        yield feed, server, path


def ask(port: int, url: str, *headers: str) -> bytes:
    """One request's answer on a fresh connection (only the head of a stream, which has no Content-Length)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn, conn.makefile("rb") as reader:
        conn.sendall(get(url, *headers))
        return read_answer(reader)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_every_v1_route_is_checked_here_and_every_other_route_is_meant_to_be_open() -> None:
    # Named as the OpenAPI document names them, without a convertor such as ":path".
    paths = {getattr(route, "path", "").replace(":path}", "}") for route in create_app(make_feed()).routes}
    assert {p for p in paths if p.startswith("/v1/")} == set(URLS), "a new /v1 route needs a case here"
    assert {p for p in paths if not p.startswith("/v1/")} <= OPEN, "a route outside /v1 is served to anyone"


def test_the_openapi_document_names_the_bearer_scheme_on_every_v1_operation_only(
    gateway: tuple[PredictionFeed, uvicorn.Server, Path],
) -> None:
    _, server, _ = gateway
    document = json.loads(ask(port_of(server), "/openapi.json").split(b"\r\n\r\n", 1)[1])
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    secured = {path for path, ops in document["paths"].items() for op in ops.values() if "security" in op}
    assert secured == set(URLS)
    assert "securitySchemes" not in create_app(make_feed()).openapi().get("components", {}), "open: no scheme"


@pytest.mark.parametrize("url", URLS.values())
def test_each_route_refuses_no_or_a_wrong_token_and_serves_a_right_one(
    url: str, gateway: tuple[PredictionFeed, uvicorn.Server, Path]
) -> None:
    feed, server, _ = gateway
    port = port_of(server)
    missing = ask(port, url)
    assert status(missing) == 401, missing
    assert b'\r\nwww-authenticate: Bearer realm="tickcast"\r\n' in missing
    body = json.loads(missing.split(b"\r\n\r\n", 1)[1])
    assert body == {"error": "unauthorized", "detail": "this gateway wants 'Authorization: Bearer <token>'"}
    for refused in (WRONG, f"Authorization: Basic {TOKEN}", "Authorization: Bearer"):
        answer = ask(port, url, refused)
        assert status(answer) == 401 and b'error="invalid_token"' in answer, answer
        assert TOKEN.encode() not in answer and TOKEN[:-1].encode() not in answer, "a token echoed back"
    hot_before = HotGetProtocol.answered
    served = ask(port, url, RIGHT)
    assert status(served) == 200, served
    if url == "/v1/predictions/SPY":
        assert HotGetProtocol.answered == hot_before + 1, "the hot GET should serve a known token itself"
    exported = generate_latest(feed.metrics.registry).decode()
    assert 'tickcast_gateway_client_requests_total{client="desk-1"} 1.0' in exported
    assert 'tickcast_gateway_auth_refused_total{reason="missing"} 1.0' in exported
    assert 'tickcast_gateway_auth_refused_total{reason="unknown"} 1.0' in exported
    assert 'tickcast_gateway_auth_refused_total{reason="malformed"} 2.0' in exported


@pytest.mark.parametrize("url", ["/health", "/metrics", "/", "/static/dashboard.js", "/openapi.json"])
def test_probes_metrics_and_the_page_stay_open(url: str, gateway: tuple[PredictionFeed, uvicorn.Server, Path]) -> None:
    _, server, _ = gateway
    assert status(ask(port_of(server), url)) == 200


def test_a_keep_alive_connection_hashes_its_token_once_and_is_refused_once_revoked(
    gateway: tuple[PredictionFeed, uvicorn.Server, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    feed, server, path = gateway
    assert feed.clients is not None
    checks: list[bytes | None] = []
    check = feed.clients.check

    def counted(header: bytes | None) -> Any:
        checks.append(header)
        return check(header)

    monkeypatch.setattr(feed.clients, "check", counted)
    hot_before = HotGetProtocol.answered
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as conn, conn.makefile("rb") as reader:

        def request(*headers: str) -> int:
            conn.sendall(get("/v1/predictions/SPY", *headers))
            return status(read_answer(reader))

        assert [request(RIGHT) for _ in range(3)] == [200, 200, 200]
        assert len(checks) == 1, "the token was checked again on the same connection"
        assert request(WRONG) == 401, "another header on the same connection must be checked"
        assert request(RIGHT) == 200 and len(checks) == 3  # the wrong one twice: the hot path, then FastPath
        assert HotGetProtocol.answered == hot_before + 4
        write_clients(path, [client_line("desk-2", OTHER)])
        wait_for(lambda: request(RIGHT) == 401, 5, "the gateway to reload its clients file and refuse desk-1")


def test_a_revoked_clients_stream_is_told_and_closed(gateway: tuple[PredictionFeed, uvicorn.Server, Path]) -> None:
    feed, server, path = gateway
    port = port_of(server)
    with capture_logs() as logs, socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(get("/v1/stream?symbols=SPY", RIGHT))
        head, body = read_head(conn)
        assert head.startswith(b"HTTP/1.1 200 OK")
        wait_for(lambda: len(feed.hub) == 1, 5, "the stream in the hub")
        asyncio.run_coroutine_threadsafe(_publish(feed, "SPY"), loop_of(server)).result(5)
        write_clients(path, [client_line("desk-2", OTHER)])
        while not body.endswith(b"0\r\n\r\n"):  # the chunked body's end: the gateway closed the stream
            chunk = conn.recv(65536)
            assert chunk, "connection closed before the stream's end"
            body += chunk
        assert b"event: dropped" in body and b'"reason": "revoked"' in body
        assert b"event: prediction" in body, "what came before the revocation was delivered"
    wait_for(lambda: len(feed.hub) == 0, 5, "the hub to let go of the revoked stream")
    assert status(ask(port, "/v1/stream?symbols=SPY", RIGHT)) == 401
    opened = [e for e in logs if e["event"] == "gateway_stream_opened"]
    closed = [e for e in logs if e["event"] == "gateway_stream_closed"]
    assert len(opened) == 1 and closed[0]["reason"] == "revoked"
    assert opened[0]["client"] == closed[0]["client"] == "desk-1", "the client's name in its log lines"
    assert TOKEN not in str(logs)
    exported = generate_latest(feed.metrics.registry).decode()
    assert 'client="desk-1"' not in exported
    assert 'tickcast_gateway_clients_dropped_total{reason="revoked"} 1.0' in exported


async def _publish(feed: PredictionFeed, symbol: str) -> None:
    publish(feed, symbol)
