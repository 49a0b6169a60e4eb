"""The hot path of the gateway, in plain ASGI in front of FastAPI: ``GET /v1/predictions/{symbol}`` of a held symbol.

Most requests are that one, and its answer is known before the request comes: the prediction's body and
ETag were encoded when it arrived (:class:`~tickcast.gateway.cache.Published`), only ``age_ms`` is added.
FastAPI's per-request work (routing, dependency solving, header validation) cost more than the answer itself,
so a request for a symbol in the cache is answered here. Anything else (unknown or invalid symbols, other
paths, over-long headers) goes on to FastAPI, which validates it and answers as its OpenAPI document says:
a symbol in the cache came from the contract, so it already matches the path's pattern.

The same middleware refuses over-long query strings (414) before any parsing; it replaces an
``@app.middleware("http")`` one, which wrapped every response, SSE streams included, in extra tasks and queues.
With a clients file (:mod:`tickcast.gateway.auth`), it is also the one gate of every ``/v1/`` route: a request
without a known bearer token is refused (401) here, before any route, and an accepted one carries its client's
name in the scope (:data:`CLIENT`) and in its log lines.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from fastapi.responses import Response

from tickcast.gateway.auth import Clients, Refusal
from tickcast.gateway.cache import LatestCache, Published
from tickcast.gateway.httpio import problem
from tickcast.gateway.metrics import GatewayMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Longest query string accepted, whatever its parameters (``symbols`` alone may have half of it).
MAX_QUERY_BYTES = 8_192
#: Longest If-None-Match the fast path reads; a longer one goes to FastAPI, which answers 422 as documented.
MAX_IF_NONE_MATCH = 1_024
LATEST_PREFIX = "/v1/predictions/"
#: Scope key under which the server's own ``send`` reaches the app (:class:`tickcast.gateway.sse.EventStream`).
SERVER_SEND = "tickcast.server_send"
#: Scope key of a writer of body chunks straight to the connection, ``(bytes) -> bool`` (False: it cannot take
#: them now), left by :class:`tickcast.gateway.hotget.HotGetProtocol` for the SSE stream's hub writes.
DIRECT_WRITE = "tickcast.direct_write"
#: Scope keys of an accepted request's client name and token digest (with authentication on).
CLIENT = "tickcast.client"
CREDENTIAL = "tickcast.credential"
#: Routes that serve predictions or the pipeline's state; /health, /metrics, the page and its assets stay open.
PROTECTED_PREFIX = "/v1/"
_JSON = (b"content-type", b"application/json")
_REVALIDATE = (b"cache-control", b"no-cache")


def answer(item: Published, if_none_match: bytes | None, now_s: float) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of a GET of ``item``: 304 if ``if_none_match`` names its ETag (or ``*``).

    >>> item = Published(2, 9, "A", 0.0, 1_000.0, '{"symbol":"A"}')
    >>> status, headers, body = answer(item, None, now_s=1.5)
    >>> status, body, dict(headers)[b"etag"]
    (200, b'{"symbol":"A","age_ms":500.0}', b'"2:9"')
    >>> answer(item, b'"1:1", W/"2:9"', now_s=1.5)[0], answer(item, b"*", now_s=1.5)[2]
    (304, b'')
    """
    etag = item.etag
    if if_none_match is not None and _names(if_none_match, etag):
        return 304, [(b"etag", etag), _REVALIDATE], b""
    age = round(now_s * 1000.0 - item.predicted_at_ms, 1)
    body = item.json_head + repr(age).encode() + b"}"
    return 200, [_JSON, (b"etag", etag), _REVALIDATE, (b"content-length", str(len(body)).encode())], body


def _names(if_none_match: bytes, etag: bytes) -> bool:
    tags = {tag.strip().removeprefix(b"W/") for tag in if_none_match.split(b",")}
    return b"*" in tags or etag in tags


class FastPath:
    """ASGI middleware: answers held symbols' latest predictions itself, refuses long queries, passes the rest."""

    def __init__(
        self,
        app: ASGIApp,
        cache: LatestCache,
        clock: Callable[[], float] = time.time,
        clients: Clients | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.app = app
        self.cache = cache
        self.clock = clock
        self.clients = clients
        self.metrics = metrics or GatewayMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.clients is not None and scope["type"] == "http" and scope["path"].startswith(PROTECTED_PREFIX):
            verdict = self.clients.check(_header(scope, b"authorization"))
            if isinstance(verdict, Refusal):
                self.metrics.auth_refused.labels(verdict.reason).inc()
                await unauthorized(verdict)(scope, receive, send)
                return
            self.metrics.requests_of(verdict).count += 1
            scope[CLIENT] = verdict
            scope[CREDENTIAL] = self.clients.digest_of(_header(scope, b"authorization") or b"")
            # This request's task only: its log lines name the client.
            structlog.contextvars.bind_contextvars(client=verdict)
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if len(scope["query_string"]) > MAX_QUERY_BYTES:
            refused = problem(414, "query_too_long", f"query strings are limited to {MAX_QUERY_BYTES} bytes")
            await refused(scope, receive, send)
            return
        path: str = scope["path"]
        if scope["method"] == "GET" and path.startswith(LATEST_PREFIX):
            item = self.cache.get(path[len(LATEST_PREFIX) :])
            if item is not None:
                if_none_match = _header(scope, b"if-none-match")
                if if_none_match is None or len(if_none_match) <= MAX_IF_NONE_MATCH:
                    status, headers, body = answer(item, if_none_match, self.clock())
                    await send({"type": "http.response.start", "status": status, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    return
        scope[SERVER_SEND] = send
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            found: bytes = value
            return found
    return None


def unauthorized(refusal: Refusal) -> Response:
    """The 401 answer of a refused request: what was missing or wrong, and never the token.

    >>> answer = unauthorized(Refusal("unknown", "not a known token"))
    >>> answer.status_code, answer.headers["www-authenticate"], answer.body
    (401, 'Bearer realm="tickcast", error="invalid_token"', b'{"error":"unauthorized","detail":"not a known token"}')
    """
    # RFC 6750: no error code when no credentials came at all.
    challenge = 'Bearer realm="tickcast"' + ("" if refusal.reason == "missing" else ', error="invalid_token"')
    return problem(401, "unauthorized", refusal.detail, {"WWW-Authenticate": challenge})
