"""Run the gateway: the Kafka source and the HTTP app in one uvicorn process."""

from __future__ import annotations

import structlog
import uvicorn

from tickcast.gateway.app import create_app
from tickcast.gateway.feed import PredictionFeed
from tickcast.gateway.hotget import hot_get_protocol
from tickcast.gateway.settings import GatewaySettings
from tickcast.gateway.source import KafkaSource
from tickcast.gateway.stalls import settle_gc
from tickcast.gateway.timeslice import SliceUnavailable, request_slice
from tickcast.gateway.tls import ServerTls

log = structlog.get_logger("tickcast.gateway")


def run_gateway(settings: GatewaySettings, tls: ServerTls | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C (uvicorn handles both and closes the streams); HTTPS only with ``tls``."""
    if settings.gateway_sched_slice_us:
        # Asked on this thread, which runs the event loop, before any other starts: the Kafka thread inherits it.
        try:
            granted = request_slice(settings.gateway_sched_slice_us)
            log.info("gateway_time_slice", asked_us=settings.gateway_sched_slice_us, granted_ns=granted)
        except SliceUnavailable as exc:
            log.warning("gateway_time_slice_unavailable", asked_us=settings.gateway_sched_slice_us, error=str(exc))
    feed = PredictionFeed(settings)
    app = create_app(feed, KafkaSource(settings), tls=tls)
    # Here, not in the app's lifespan: a process setting, which in-process tests must not get.
    settle_gc(settings.gateway_gc_threshold0, settings.gateway_gc_freeze)
    config = uvicorn.Config(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # The hot GET answered in the HTTP protocol itself, before ASGI (tickcast.gateway.hotget).
        http=hot_get_protocol(feed),
        # A stream is closed by the gateway at shutdown; do not wait the default forever for clients.
        timeout_graceful_shutdown=5,
        **(tls.uvicorn_options() if tls is not None else {}),
    )
    uvicorn.Server(config).run()
