"""The hot GET answered inside uvicorn's HTTP protocol, before any ASGI scope, task or message is built.

``GET /v1/predictions/{symbol}`` of a held symbol is most of the gateway's requests, and its answer was
encoded when the prediction arrived (:class:`~tickcast.gateway.cache.Published`). Through ASGI it still cost a
task, a request-response cycle, two send messages and their header checks per request (~85 us of CPU, most
of it uvicorn's Python). :class:`HotGetProtocol`, a subclass of uvicorn's httptools protocol, recognises that
request as soon as its headers are parsed and writes the whole answer with one ``transport.write``; every
other request (and any hot one it is unsure of) goes on to the normal ASGI path unchanged, where
:class:`~tickcast.gateway.fastpath.FastPath` answers it with the same bytes.

It also leaves each ASGI request a :class:`ChunkWriter` in its scope (:data:`DIRECT_WRITE`): the SSE
stream's hub writes live events with it straight to the connection, in the same chunked framing as
uvicorn's ``send``, without an ASGI message per client per event.

With a clients file, a hot GET is answered here only with a known bearer token; one without goes on to the
ASGI path, whose :class:`~tickcast.gateway.fastpath.FastPath` refuses it (401) in one place for every route.
The last accepted Authorization value is kept per connection (and the clients file's generation with it), so
a keep-alive client's token is hashed once, not per request: later requests compare the header's bytes
(``hmac.compare_digest``: a proxy may send several clients' requests over one connection).

This is the only module coupled to uvicorn's internals (``HttpToolsProtocol``'s parser callbacks and
attributes, ``RequestResponseCycle``'s state, and ``STATUS_LINE``); pyproject pins uvicorn's range, and
``tests/unit/gateway/test_hotget.py`` and ``test_event_stream.py`` fail if uvicorn changes what this relies
on or if an answer here differs from the ASGI path's.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from tickcast.gateway.auth import Clients
from tickcast.gateway.cache import LatestCache
from tickcast.gateway.fastpath import DIRECT_WRITE, LATEST_PREFIX, MAX_IF_NONE_MATCH, answer
from tickcast.gateway.feed import PredictionFeed
from tickcast.gateway.metrics import GatewayMetrics, Tally

_PREFIX = LATEST_PREFIX.encode()
#: Anything in a URL that makes its ASGI path differ from the bytes themselves: the ASGI path decides those.
_NOT_PLAIN = (b"?", b"%", b"#")
#: Request headers that announce a body, an upgrade or a 100-continue, which the ASGI path handles.
_PASS_ON_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"upgrade", b"expect"})


class HotGetProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering held symbols' latest predictions itself (see the module doc).

    Built per app by :func:`hot_get_protocol`, which sets the cache and clock it answers from, and the clients
    it accepts (None: no authentication).
    """

    cache: ClassVar[LatestCache]
    clients: ClassVar[Clients | None] = None
    metrics: ClassVar[GatewayMetrics]
    clock: ClassVar[staticmethod[[], float]] = staticmethod(time.time)
    #: Served here since start (a class counter: one per process, read by tests and the bench).
    answered: ClassVar[int] = 0
    _defaults_of: ClassVar[object] = None
    _defaults: ClassVar[bytes] = b""
    _answered_here = False
    #: This connection's last accepted Authorization value, the clients' generation then, and its counter.
    _accepted: bytes = b""
    _accepted_in = -1
    _counted: Tally | None = None

    def on_message_begin(self) -> None:
        self._answered_here = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        if not self._answer_hot_get():
            super().on_headers_complete()
            cycle = self.cycle
            # The cycle uvicorn just made for this request (not an upgrade's, which made none); its ASGI task
            # has not run yet, so the app finds the writer in its scope.
            if cycle is not None and cycle.scope is self.scope:
                # An extension key: the scope is a plain dict at run time, a TypedDict only to mypy.
                self.scope[DIRECT_WRITE] = ChunkWriter(cycle).write  # type: ignore[literal-required]

    def on_body(self, body: bytes) -> None:
        if not self._answered_here:
            super().on_body(body)

    def on_message_complete(self) -> None:
        # uvicorn's own callback reads the request's cycle, which an answer from here never made.
        if not self._answered_here:
            super().on_message_complete()

    def _answer_hot_get(self) -> bool:
        url: bytes = self.url
        if not url.startswith(_PREFIX) or any(mark in url for mark in _NOT_PLAIN):
            return False
        parser = self.parser
        if parser.get_method() != b"GET" or parser.get_http_version() != "1.1" or not parser.should_keep_alive():
            return False
        cycle = self.cycle
        # In order behind a request still being answered (pipelining), and never past a client not reading.
        if (cycle is not None and not cycle.response_complete) or self.pipeline or self.flow.write_paused:
            return False
        if self.config.access_log or self.limit_concurrency is not None:
            return False  # access log lines, or 503s past a connection limit: the ASGI path does those
        item = self.cache.get(url[len(_PREFIX) :].decode("latin-1"))
        if item is None:
            return False  # unknown or invalid: FastAPI answers 404 or 422
        if_none_match: bytes | None = None
        authorization: bytes | None = None
        for name, value in self.headers:
            if name in _PASS_ON_HEADERS:
                return False
            if name == b"if-none-match" and if_none_match is None:
                if len(value) > MAX_IF_NONE_MATCH:
                    return False  # FastAPI refuses it (422) as its OpenAPI document says
                if_none_match = value
            elif name == b"authorization" and authorization is None:
                authorization = value
        if self.clients is not None and not self._admit(self.clients, authorization):
            return False  # FastPath answers the 401
        status, headers, body = answer(item, if_none_match, self.clock())
        parts = [STATUS_LINE[status], self._default_headers()]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts += (b"\r\n", body)
        self.transport.write(b"".join(parts))
        self._answered_here = True
        HotGetProtocol.answered += 1
        # What uvicorn does once a response is complete: count it, arm the keep-alive timeout.
        self.on_response_complete()
        return True

    def _admit(self, clients: Clients, authorization: bytes | None) -> bool:
        """Whether ``authorization`` carries a known token; counts the request against its client."""
        if authorization is None:
            return False
        if self._accepted_in != clients.generation or not hmac.compare_digest(authorization, self._accepted):
            verdict = clients.check(authorization)
            if not isinstance(verdict, str):
                return False
            self._accepted, self._accepted_in = authorization, clients.generation
            self._counted = self.metrics.requests_of(verdict)
        assert self._counted is not None  # nosec B101 # narrows the type: set with _accepted
        self._counted.count += 1
        return True

    def _default_headers(self) -> bytes:
        """uvicorn's ``date`` and ``server`` headers, encoded once per second (uvicorn replaces the list then)."""
        defaults = self.server_state.default_headers
        if defaults is not HotGetProtocol._defaults_of:
            HotGetProtocol._defaults = b"".join(name.lower() + b": " + value + b"\r\n" for name, value in defaults)
            HotGetProtocol._defaults_of = defaults
        return HotGetProtocol._defaults


class ChunkWriter:
    """Writes body chunks of one response straight to its connection, as uvicorn's ``send`` frames them for a
    chunked response; refuses (False) whenever that ``send`` would wait or drop them: before the response
    started or after it ended, on a connection that closed or whose buffer is past its high-water mark.

    Refusing is how the hub learns that a client is behind: the event then queues for the stream's task,
    which waits for the connection to drain, and a client whose queue fills is dropped.
    """

    __slots__ = ("_cycle",)

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = cycle

    def write(self, body: bytes) -> bool:
        cycle = self._cycle
        if (
            cycle.disconnected
            or cycle.flow.write_paused
            or not cycle.response_started
            or cycle.response_complete
            or not cycle.chunked_encoding
        ):
            return False
        cycle.transport.write(b"%x\r\n%b\r\n" % (len(body), body))
        return True


def hot_get_protocol(feed: PredictionFeed, clock: Callable[[], float] = time.time) -> type[HotGetProtocol]:
    """The protocol class to give uvicorn (``uvicorn.Config(http=...)``), answering from ``feed``'s cache to
    the clients it accepts (the whole feed, so that its clients can never be left out).

    >>> from tickcast.gateway.settings import GatewaySettings
    >>> protocol = hot_get_protocol(PredictionFeed(GatewaySettings()))
    >>> issubclass(protocol, HttpToolsProtocol), protocol.clients is None
    (True, True)
    """
    attributes = {"cache": feed.cache, "clock": staticmethod(clock), "clients": feed.clients, "metrics": feed.metrics}
    return type("BoundHotGetProtocol", (HotGetProtocol,), attributes)
