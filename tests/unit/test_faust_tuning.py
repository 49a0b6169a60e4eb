"""The fetch-wait hook must survive Faust upgrades: fail loudly if the hook point moves."""

from __future__ import annotations

import asyncio

from tickcast.predictor.app import create_app
from tickcast.predictor.settings import PredictorSettings


def test_worker_consumer_uses_the_configured_fetch_wait() -> None:
    settings = PredictorSettings(bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=37, web_port=16066)
    app, _ = create_app(settings)

    async def build() -> int:
        # aiokafka consumers must be created inside a running loop, as the worker does.
        thread = app.consumer._thread  # type: ignore[attr-defined]
        consumer = thread._create_worker_consumer(app.transport)
        return int(consumer._fetch_max_wait_ms)

    assert asyncio.run(build()) == 37


def test_default_fetch_wait_is_short() -> None:
    assert PredictorSettings(bootstrap_servers="127.0.0.1:1").fetch_max_wait_ms <= 100
