"""The Faust hooks (fetch wait, batch delivery) must survive Faust upgrades: fail loudly if a hook point moves."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.transport.drivers import aiokafka as faust_aiokafka
from hypothesis import given
from hypothesis import strategies as st

from tickcast.predictor.app import create_app
from tickcast.predictor.faust_tuning import fresh_records
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


def test_ticks_are_subscribed_and_delivered_in_batches_not_through_an_agent() -> None:
    settings = PredictorSettings(bootstrap_servers="127.0.0.1:1", ticks_topic="t-batch", web_port=16067)
    app, _ = create_app(settings)
    assert list(app.batch_handlers) == ["t-batch"]  # type: ignore[attr-defined]
    # The conductor's topic set is the group subscription; an unsubscribed topic would never be fetched.
    assert any("t-batch" in channel.topics for channel in app.topics)
    assert not app.agents, "a per-event agent on ticks would compete with the batch path for the same records"
    # The drain loop must be ours: Faust's per-event loop would ignore batch_handlers silently.
    consumer_class = type(app.consumer)
    assert consumer_class._drain_messages is not faust_aiokafka.Consumer._drain_messages


@given(
    offsets=st.lists(st.integers(min_value=0, max_value=50), unique=True).map(sorted),
    read_offset=st.none() | st.integers(min_value=0, max_value=60),
)
def test_fresh_records_are_the_suffix_at_or_after_the_read_offset(offsets: list[int], read_offset: int | None) -> None:
    records = [SimpleNamespace(offset=o) for o in offsets]
    kept = [r.offset for r in fresh_records(records, read_offset)]  # type: ignore[arg-type]
    assert kept == [o for o in offsets if read_offset is None or o >= read_offset]
