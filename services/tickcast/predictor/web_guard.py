"""The worker's HTTP server, closed down to what tickcast serves: read-only views, bounded input, optional token.

Faust mounts views of its own beside tickcast's: ``/router`` (the cluster's member
URLs and which one owns a key), ``/table`` (table names and data), and, in debug
mode, sensor statistics, the service graph and ``/performance``. None is needed
(tickcast keeps no Faust tables and routes nothing), so :data:`FAUST_VIEWS_OFF`
turns every one of them off. What stays:

* every endpoint is read-only: ``GET`` and ``HEAD`` only, anything else ``405``,
  whatever route it is sent to, and no request body is read (``client_max_size``);
* ``/predictions/{symbol}`` accepts only a symbol that ticks may carry
  (:data:`~tickcast.common.validation.SYMBOL_PATTERN`), else ``400``;
* with ``TICKCAST_WEB_TOKEN`` set, the prediction endpoints want
  ``Authorization: Bearer <token>``, compared in constant time, else ``401``.
  Health, stats and metrics stay open: probes and Prometheus scrape them.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tickcast.common.validation import SYMBOL_PATTERN

#: Faust's own views, all off (faust-streaming's per-view settings; see ``faust/web/base.py``).
FAUST_VIEWS_OFF: dict[str, bool] = {
    "web_router_enabled": False,
    "web_tables_enabled": False,
    "web_stats_enabled": False,
    "web_graph_enabled": False,
    "web_metrics_enabled": False,
}
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})
#: Paths that serve predictions; the bearer token, when set, guards exactly these.
PROTECTED_PREFIX = "/predictions/"
#: No endpoint reads a body: a client may not make the worker buffer more than this.
MAX_BODY_BYTES = 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def symbol_problem(symbol: str) -> str | None:
    """Why ``symbol`` is not one a tick may carry, or None when it is (nothing of the input is echoed back).

    >>> symbol_problem("BRK.B") is None
    True
    >>> symbol_problem("x" * 500)
    'a symbol is 1 to 32 characters of A-Z, 0-9 and ._:/- (upper case)'
    """
    if SYMBOL_PATTERN.fullmatch(symbol):
        return None
    return "a symbol is 1 to 32 characters of A-Z, 0-9 and ._:/- (upper case)"


def token_matches(header: str | None, token: str) -> bool:
    """True when ``header`` is ``Bearer <token>``; the comparison takes the same time wherever they differ.

    >>> token_matches("Bearer s3cret-s3cret-s3cret", "s3cret-s3cret-s3cret")
    True
    >>> token_matches("Bearer nope", "s3cret-s3cret-s3cret"), token_matches(None, "s3cret-s3cret-s3cret")
    (False, False)
    """
    scheme, _, presented = (header or "").partition(" ")
    # compare_digest on bytes: str arguments must be ASCII, and a header may not be.
    same = hmac.compare_digest(presented.strip().encode("utf-8"), token.encode("utf-8"))
    return scheme.lower() == "bearer" and same


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def guard_middleware(token: str | None) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware: ``405`` for anything but GET/HEAD, ``401`` for a prediction without the token."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in READ_ONLY_METHODS:
            return _refusal(
                405, f"method {request.method[:16]} not allowed: this server is read-only", {"Allow": "GET, HEAD"}
            )
        guarded = token is not None and request.path.startswith(PROTECTED_PREFIX)
        if guarded and not token_matches(request.headers.get("Authorization"), token or ""):
            return _refusal(
                401,
                "missing or wrong bearer token: send 'Authorization: Bearer <TICKCAST_WEB_TOKEN>'",
                {"WWW-Authenticate": 'Bearer realm="tickcast"'},
            )
        return await handler(request)

    return guard


def web_options(token: str | None) -> dict[str, Any]:
    """Faust app settings that close the worker's HTTP server (pass them to the ``faust.App``).

    >>> options = web_options(None)
    >>> options["web_router_enabled"], options["web_tables_enabled"]
    (False, False)
    >>> options["web_application_options"]["client_max_size"]
    1024
    """
    return {
        **FAUST_VIEWS_OFF,
        "web_application_options": {
            "middlewares": [guard_middleware(token)],
            "client_max_size": MAX_BODY_BYTES,
        },
    }
