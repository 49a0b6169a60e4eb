"""Partitions the worker halts: assigned beyond ``TICKCAST_PARTITIONS`` (added to a live topic), or stopped at a
record not even a dead letter of which could be produced."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from unittest import mock

from faust.types import TP

from tickcast.common.records import Tick
from tickcast.predictor.output import OutputProducer, ProduceRefused
from tickcast.predictor.settings import PredictorSettings
from tickcast.testing.worker_app import built_worker_app

NOW_MS = 1_700_000_000_000


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


@dataclass(frozen=True)
class Fetched:
    """A fetched record as the batch handler reads it (aiokafka's own record type has no public constructor)."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = NOW_MS


def test_a_partition_whose_record_not_even_a_dead_letter_can_leave_stops_there_uncommitted() -> None:
    # Reachable on a real cluster when a dead letter's own headers exceed message.max.bytes; the batch loop's
    # answer (stop the partition before that record, count it, say why) was only ever exercised in the publisher.
    settings = PredictorSettings(bootstrap_servers="127.0.0.1:1", ticks_topic="t-halt", partitions=2, web_port=16072)
    refused_at = 1

    def send(self: OutputProducer, topic: str, *args: object, **kwargs: object) -> bool:
        if topic == settings.dlq_topic:
            raise ProduceRefused(f"{topic}: Broker: Message size too large")
        return True

    with built_worker_app(settings) as (app, handler), mock.patch.object(OutputProducer, "send", send):
        predict = app.batch_handlers["t-halt"]
        codec = handler.tick_codec
        good = [codec.encode(Tick("SPY", 100.0 + i, 1.0, NOW_MS + i).to_avro()) for i in range(3)]
        records = [Fetched(0, b"SPY", good[0]), Fetched(refused_at, b"SPY", b"not avro"), Fetched(2, b"SPY", good[1])]

        async def run() -> tuple[int, int, dict[int, str]]:
            await app.on_partitions_assigned.send({TP("t-halt", 0), TP("t-halt", 1)})
            await predict(TP("t-halt", 0), records)
            after_halt = handler.counters.ticks_in
            await predict(TP("t-halt", 0), [Fetched(3, b"SPY", good[2])])  # a later fetch of the stopped partition
            halted = dict(handler.metrics.halted)
            await app.on_partitions_revoked.send({TP("t-halt", 0)})  # its next owner tries again from the last commit
            return after_halt, handler.counters.ticks_in, halted

        after_halt, after_next_fetch, halted = asyncio.run(run())
        assert list(halted) == [0]
        assert f"partition 0 stopped at offset {refused_at}" in halted[0]
        assert not handler.metrics.halted, "a revoked partition was still counted as halted"
        assert after_halt == 2, "the record after the refused one was processed"
        assert after_next_fetch == after_halt, "a later fetch of the halted partition was processed"
        assert "SPY" not in handler.forecaster.states, "the state that learned from the refused record was kept"
