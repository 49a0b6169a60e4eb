"""Run the gateway: the Kafka source and the HTTP app in one uvicorn process."""

from __future__ import annotations

import uvicorn

from tickcast.gateway.app import create_app
from tickcast.gateway.feed import PredictionFeed
from tickcast.gateway.settings import GatewaySettings
from tickcast.gateway.source import KafkaSource


def run_gateway(settings: GatewaySettings) -> None:
    """Serve until SIGTERM or Ctrl-C (uvicorn handles both and closes the streams)."""
    feed = PredictionFeed(settings)
    app = create_app(feed, KafkaSource(settings))
    config = uvicorn.Config(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # A stream is closed by the gateway at shutdown; do not wait the default forever for clients.
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
