"""The gateway's HTTP API (FastAPI): latest predictions, symbols, the SSE stream, health, metrics, dashboard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Protocol

import structlog
from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from tickcast.common.validation import SYMBOL_PATTERN
from tickcast.gateway.auth import CHECK_EVERY_S
from tickcast.gateway.fastpath import CLIENT, CREDENTIAL, MAX_QUERY_BYTES, PROTECTED_PREFIX, FastPath, answer
from tickcast.gateway.feed import PredictionFeed
from tickcast.gateway.httpio import (
    REVALIDATE,
    SYMBOL_REGEX,
    BadRequest,
    age_ms,
    etag_of,
    matches,
    parse_symbols,
    problem,
    with_age,
)
from tickcast.gateway.positions import BadPosition, decode
from tickcast.gateway.schemas import Health, PipelineHealth, PredictionList, PredictionOut, Problem, SymbolList
from tickcast.gateway.sse import EventStream
from tickcast.gateway.stalls import GcWatch, probe_loop_lag
from tickcast.gateway.tls import ServerTls
from tickcast.gateway.workers import WorkerStatsPoller, dns_discovery

log = structlog.get_logger("tickcast.gateway")
STATIC_DIR = Path(__file__).parent / "static"
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "With a clients file set: no, or no known, bearer token."},
    414: {"model": Problem, "description": "Query string too long."},
    422: {"model": Problem, "description": "Invalid input."},
}
#: The 401 alone, for the /v1 routes that have none of the other errors.
GUARDED: dict[int | str, dict[str, Any]] = {401: ERRORS[401]}


class Source(Protocol):
    """What feeds the gateway (Kafka in production): started with the app, stopped with it."""

    def start(self, feed: PredictionFeed) -> None: ...
    def stop(self) -> None: ...


def create_app(
    feed: PredictionFeed,
    source: Source | None = None,
    clock: Callable[[], float] = time.time,
    tls: ServerTls | None = None,
) -> FastAPI:
    """The gateway app over ``feed``; ``source`` (if any) runs while the app does; ``tls``'s files are watched."""
    settings = feed.settings
    limit = settings.gateway_max_query_symbols

    discover = dns_discovery(settings.gateway_worker_stats_dns) if settings.gateway_worker_stats_dns else None
    poller = WorkerStatsPoller(
        settings.worker_stats_urls(), settings.gateway_worker_stats_interval_s, discover=discover
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if source is not None:
            source.start(feed)
        tasks = [
            asyncio.create_task(feed.hub.keep_alive(settings.gateway_keepalive_s)),
            asyncio.create_task(probe_loop_lag(feed.metrics)),
            asyncio.create_task(_check_streams_ahead(feed)),
        ]
        if poller.enabled:
            tasks.append(asyncio.create_task(poller.run()))
        if feed.clients is not None:
            tasks.append(asyncio.create_task(_watch_clients(feed)))
        if tls is not None:
            tasks.append(asyncio.create_task(_watch_certificate(tls)))
        try:
            with GcWatch(feed.metrics):
                yield
        finally:
            for task in tasks:
                task.cancel()
            feed.hub.close()
            if source is not None:
                source.stop()

    app = FastAPI(
        title="tickcast gateway",
        version="1",
        summary="Latest per-symbol price predictions, and a resumable Server-Sent Events stream of new ones.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return problem(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return problem(exc.status_code, "http_error", str(exc.detail), dict(exc.headers or {}))

    @app.get(
        # ":path": a symbol may contain '/' (BRK/B), which a plain parameter would stop at; the pattern bounds it.
        "/v1/predictions/{symbol:path}",
        response_model=PredictionOut,
        responses={**ERRORS, 304: {"description": "Not modified (If-None-Match)."}, 404: {"model": Problem}},
        summary="Latest prediction of one symbol",
    )
    async def latest(
        symbol: Annotated[str, _symbol_path()],
        if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
    ) -> Response:
        item = feed.cache.get(symbol)
        if item is None:
            return problem(404, "unknown_symbol", f"the gateway holds no prediction for {symbol!r}")
        # Normally answered by FastPath; here when it passes a request on (e.g. an If-None-Match it does not read).
        status, headers, body = answer(item, None if if_none_match is None else if_none_match.encode(), clock())
        return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})

    @app.get(
        "/v1/predictions",
        response_model=PredictionList,
        responses={**ERRORS, 304: {"description": "Not modified (If-None-Match)."}},
        summary="Latest of several symbols",
    )
    async def latest_many(
        symbols: str = _symbols_query(limit, required=True),
        if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
    ) -> Response:
        try:
            wanted = parse_symbols(symbols, limit)
        except BadRequest as exc:
            return problem(422, "invalid_symbols", str(exc))
        assert wanted is not None  # nosec B101 # narrows the type: parse_symbols returned a list or raised
        found = [item for name in sorted(wanted) if (item := feed.cache.get(name)) is not None]
        unknown = sorted(name for name in wanted if feed.cache.get(name) is None)
        etag = etag_of(found) if found else '"none"'
        headers = {"ETag": etag, "Cache-Control": REVALIDATE}
        if matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
        now = clock()
        body = '{"predictions":[' + ",".join(with_age(item, now) for item in found) + '],"unknown":'
        body += "[" + ",".join(f'"{name}"' for name in unknown) + "]}"
        return Response(body, media_type="application/json", headers=headers)

    @app.get(
        "/v1/symbols", response_model=SymbolList, responses=GUARDED, summary="Symbols the gateway knows, with their age"
    )
    async def symbols() -> dict[str, Any]:
        now = clock()
        return {
            "symbols": [
                {"symbol": i.symbol, "age_ms": age_ms(i, now), "partition": i.partition, "offset": i.offset}
                for i in sorted(feed.cache.symbols(), key=lambda i: i.symbol)
            ]
        }

    @app.get(
        "/v1/stream",
        response_class=StreamingResponse,
        responses={
            **ERRORS,
            200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events, see the README."},
            503: {"model": Problem, "description": "Starting, or too many clients; retry."},
        },
        summary="Server-Sent Events of new predictions; resumable with Last-Event-ID",
    )
    async def stream(
        request: Request,
        symbols: str | None = _symbols_query(limit, required=False),
        last_event_id: Annotated[str | None, Header(max_length=32_768)] = None,
        resume: Annotated[
            str | None, Query(max_length=4_096, description="Last-Event-ID, for clients that cannot set headers.")
        ] = None,
    ) -> Response:
        try:
            wanted = parse_symbols(symbols, limit)
            position = last_event_id or resume
            positions = decode(position) if position else None
        except (BadRequest, BadPosition) as exc:
            return problem(422, "invalid_stream_request", str(exc))
        if not feed.ready:
            # Before every partition is read to its end, a resume position could fall in what is still unread.
            return problem(503, "starting", "the gateway is still reading the stream", {"Retry-After": "1"})
        if feed.hub.full():
            return problem(503, "too_many_clients", f"{len(feed.hub)} clients connected", {"Retry-After": "5"})
        client = request.scope.get(CLIENT)
        start = feed.open_stream(wanted, positions, client, request.scope.get(CREDENTIAL))
        if client is not None:
            log.info(
                "gateway_stream_opened",
                client=client,
                symbols=None if wanted is None else len(wanted),
                clients=len(feed.hub),
            )
        return EventStream(feed, start, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get(
        "/v1/pipeline",
        response_model=PipelineHealth,
        responses=GUARDED,
        summary="Throughput, latency, workers, dead letters",
    )
    async def pipeline() -> PipelineHealth:
        view = feed.pipeline
        return PipelineHealth(
            predictions_per_s=view.rate(),
            latency_ms=None if view.latency_ms is None else round(view.latency_ms, 1),
            workers=view.workers(),
            dead_letters=view.dead_letters,
            symbols=len(feed.cache),
            clients=len(feed.hub),
            ready=feed.ready,
            **(poller.summary() if poller.urls else {}),
        )

    @app.get(
        "/health",
        response_model=Health,
        responses={
            503: {
                "model": Health,
                "description": "Starting (not every partition read to its end yet), or the predictions reader "
                "failed and has not caught up since its restart (``reason`` says why).",
            }
        },
        summary="ok once the gateway serves current predictions",
    )
    async def health() -> Response:
        if feed.reader_error is not None:
            status, reason = "reader_failed", feed.reader_error
        elif not feed.ready:
            status = "starting"
            reason = f"{len(feed.caught_up)} of {settings.partitions} partitions of predictions read to their end"
        else:
            status, reason = "ok", None
        body = Health(
            status=status,
            reason=reason,
            ready=feed.ready,
            symbols=len(feed.cache),
            clients=len(feed.hub),
            partitions_caught_up=len(feed.caught_up),
            ready_after_s=feed.ready_after_s,
        )
        return Response(body.model_dump_json(), status_code=200 if feed.ready else 503, media_type="application/json")

    @app.get("/metrics", response_class=Response, summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(feed.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Long queries (414) and the hot GET, before FastAPI does any work on the request: in front of its whole
    # middleware stack (error pages, exception handlers, exit stacks), not inside it as add_middleware() puts
    # it, which wrapped every send in their closures (measured ~120 -> ~100 us of CPU per GET).
    if feed.clients is not None:
        app.openapi = _with_bearer(app)  # type: ignore[method-assign]
    app.middleware_stack = FastPath(
        app.build_middleware_stack(), cache=feed.cache, clock=clock, clients=feed.clients, metrics=feed.metrics
    )
    return app


def _with_bearer(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The app's OpenAPI document with the bearer scheme on every /v1 operation (/docs can then send a token)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = app.openapi_schema
        if schema is None:
            schema = generate()  # FastAPI keeps it as app.openapi_schema: changed in place, once
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "A client's token (TICKCAST_GATEWAY_CLIENTS_FILE holds its SHA-256).",
            }
            for path, operations in schema["paths"].items():
                if path.startswith(PROTECTED_PREFIX):
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}]
        return schema

    return openapi


async def _watch_clients(feed: PredictionFeed) -> None:
    """Look at the clients file every second; reload it and close revoked clients' streams when it changed."""
    while True:
        await asyncio.sleep(CHECK_EVERY_S)  # the check's period, not a wait for an event
        revoked = feed.refresh_clients(time.monotonic())
        if revoked:
            log.info("gateway_streams_revoked", streams=revoked)


async def _check_streams_ahead(feed: PredictionFeed) -> None:
    """Every second, reset the streams that resumed beyond the topic's end (see :meth:`PredictionFeed.check_ahead`)."""
    while True:
        await asyncio.sleep(CHECK_EVERY_S)  # the check's period, not a wait for an event
        feed.check_ahead(time.monotonic())


async def _watch_certificate(tls: ServerTls) -> None:
    """Look at the certificate's files every second; a renewed pair serves every new connection from then on."""
    while True:
        await asyncio.sleep(CHECK_EVERY_S)  # the check's period, not a wait for an event
        tls.refresh(time.monotonic())


def _symbol_path() -> Any:
    from fastapi import Path as PathParam

    return PathParam(pattern=SYMBOL_REGEX, max_length=32, description="Symbol, e.g. SPY.")


def _symbols_query(limit: int, required: bool) -> Any:
    # The list rule in the schema itself, so a client generator (and schemathesis) knows what is valid.
    return Query(
        ... if required else None,
        max_length=MAX_QUERY_BYTES // 2,
        pattern=f"^{SYMBOL_PATTERN.pattern}(,{SYMBOL_PATTERN.pattern}){{0,{limit - 1}}}$",
        description=f"Comma-separated symbols, e.g. SPY,BAC (at most {limit})" + ("." if required else "; none = all."),
    )
