"""What the worker does with partitions it is assigned beyond ``TICKCAST_PARTITIONS`` (added to a live topic)."""

from __future__ import annotations

import asyncio

from faust.types import TP

from tickcast.predictor.settings import PredictorSettings
from tickcast.testing.worker_app import built_worker_app


def test_a_partition_beyond_the_configured_count_is_halted_and_counted_not_processed() -> None:
    # Apache Kafka adds partitions to a live topic; the start check can't see it, and the worker used to restore
    # and process partition 5 of 2, writing predictions to a predictions partition that does not exist.
    settings = PredictorSettings(bootstrap_servers="127.0.0.1:1", ticks_topic="t-beyond", partitions=2, web_port=16071)
    with built_worker_app(settings) as (app, handler):

        async def assign() -> None:
            await app.on_partitions_assigned.send({TP("t-beyond", 1), TP("t-beyond", 5)})

        asyncio.run(assign())
        assert list(handler.metrics.halted) == [5]
        assert "beyond TICKCAST_PARTITIONS=2" in handler.metrics.halted[5]
        assert "tickcast_partitions_halted 1.0" in handler.metrics.render().decode()
