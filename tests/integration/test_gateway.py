"""The gateway on the real broker: worker predictions served by GET, and by SSE with a gap-free resume."""

from __future__ import annotations

import asyncio
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tickcast.client import ClientSettings, PredictionRecord, TickcastClient
from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE
from tickcast.common.records import Prediction
from tickcast.producer.publisher import TickPublisher
from tickcast.producer.settings import ProducerSettings
from tickcast.producer.synthetic import SyntheticFeed, symbol_names
from tickcast.testing.drain import read_predictions_to_end
from tickcast.testing.gateway import GatewayProcess, read_events
from tickcast.testing.pipeline import Pipeline, wait_for_assignment
from tickcast.testing.reading import collect
from tickcast.testing.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SYMBOLS = symbol_names(6)


def send(pipeline: Pipeline, feed: SyntheticFeed, count: int) -> None:
    publisher = pipeline.publisher()
    for tick in feed.take(count):
        publisher.publish(tick)
    assert publisher.close() == 0


def test_a_gateway_serves_what_workers_predicted_and_a_stream_resumes_without_gap_or_duplicate(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    wait_for_assignment(pipeline, pipeline.start_workers(1), timeout_s=45)
    feed = SyntheticFeed(SYMBOLS, seed=5, clock_ms=lambda: time.time_ns() // 1_000_000)
    reader = pipeline.reader()
    send(pipeline, feed, 120)
    collect(reader, 120, 30, "predictions", pipeline)

    # Cold start: predictions made before the gateway existed are served at once.
    gateway = GatewayProcess(pipeline.env(), tmp_path / "gateway.log").start(ready_timeout_s=20)
    try:
        before = read_predictions_to_end(pipeline.kafka, pipeline.predictions_topic)
        last = {p.symbol: p for p in before}
        for symbol in SYMBOLS:
            answer = httpx.get(f"{gateway.url}/v1/predictions/{symbol}", timeout=5)
            assert answer.status_code == 200, answer.text
            assert answer.json()["source_offset"] == last[symbol].source_offset
        assert httpx.get(f"{gateway.url}/v1/predictions/NOPE", timeout=5).status_code == 404

        # A stream of everything, cut after 30 events, resumed with the id of the last one it got.
        with ThreadPoolExecutor(1) as pool:
            reading = pool.submit(read_events, f"{gateway.url}/v1/stream", 30, 20.0)
            wait_for(lambda: gateway.clients() == 1, 10, "the stream to connect", diagnostics=gateway.log_tail)
            send(pipeline, feed, 60)
            first = reading.result()
        send(pipeline, feed, 60)
        rest = read_events(f"{gateway.url}/v1/stream", 90, timeout_s=20, last_event_id=first[-1].id)
        got = [(e.json()["partition"], e.json()["offset"]) for e in first + rest]
        assert all(e.event == "prediction" for e in first + rest)
        assert len(got) == len(set(got)) == 120, "a duplicate or a gap across the reconnect"
        lineages = {(e.json()["source_partition"], e.json()["source_offset"]) for e in first + rest}
        everything = read_predictions_to_end(pipeline.kafka, pipeline.predictions_topic)
        new = {(p.source_partition, p.source_offset) for p in everything} - {
            (p.source_partition, p.source_offset) for p in before
        }
        assert lineages == new

        # One symbol: the id is partition:offset, and resuming from its first event gives the others, in order.
        mine = [(e.json()["partition"], e.json()["offset"]) for e in first + rest if e.json()["symbol"] == SYMBOLS[0]]
        assert len(mine) >= 3
        partition, offset = mine[0]
        resumed = read_events(
            f"{gateway.url}/v1/stream?symbols={SYMBOLS[0]}", len(mine) - 1, 20, last_event_id=f"{partition}:{offset}"
        )
        assert [e.id for e in resumed] == [f"{p}:{o}" for p, o in mine[1:]]
    finally:
        gateway.stop()
        reader.close()


def test_the_client_gives_the_same_predictions_from_kafka_and_from_a_gateway(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    wait_for_assignment(pipeline, pipeline.start_workers(1), timeout_s=45)
    gateway = GatewayProcess(pipeline.env(), tmp_path / "gateway.log").start(ready_timeout_s=20)
    settings = ClientSettings(**pipeline.settings_kwargs())
    chosen = SYMBOLS[:2]
    ticks = SyntheticFeed(SYMBOLS, seed=9, clock_ms=lambda: time.time_ns() // 1_000_000).take(90)
    expected = sum(1 for tick in ticks if tick.symbol in chosen)

    async def read(client: TickcastClient) -> list[PredictionRecord]:
        got = []
        async with asyncio.timeout(30):
            async for record in client.subscribe(chosen):
                got.append(record)
                if len(got) == expected:
                    return got
        return got

    async def scenario() -> tuple[list[PredictionRecord], ...]:
        # From the beginning: the topics are this test's own and empty, so that is exactly "from now".
        from_kafka = TickcastClient.kafka(settings, from_beginning=True)
        from_gateway = TickcastClient.gateway(gateway.url)
        readers = asyncio.gather(read(from_kafka), read(from_gateway))
        await asyncio.to_thread(
            wait_for, lambda: gateway.clients() == 1, 10, "the client's stream to connect", diagnostics=gateway.log_tail
        )
        publisher = pipeline.publisher()
        for tick in ticks:
            publisher.publish(tick)
        assert publisher.close() == 0
        kafka_records, gateway_records = await readers
        latest = await asyncio.gather(from_kafka.latest(chosen[0]), from_gateway.latest(chosen[0]))
        return kafka_records, gateway_records, [r for r in latest if r is not None]

    try:
        kafka_records, gateway_records, latest = asyncio.run(scenario())
    finally:
        gateway.stop()
    assert len(kafka_records) == len(gateway_records) == expected
    assert [r.lineage for r in kafka_records if r.symbol == chosen[0]] == [
        r.lineage for r in gateway_records if r.symbol == chosen[0]
    ]
    assert {r.lineage for r in kafka_records} == {r.lineage for r in gateway_records}
    assert len(latest) == 2 and latest[0] == latest[1]
    assert latest[0].lineage == [r for r in kafka_records if r.symbol == chosen[0]][-1].lineage


def test_a_gateway_refuses_what_it_cannot_serve_and_goes_on_reading(pipeline: Pipeline, tmp_path: Path) -> None:
    gateway = GatewayProcess(pipeline.env(), tmp_path / "gateway.log").start(ready_timeout_s=20)
    try:
        codec = AvroCodec(
            open_schema_store(None), f"{pipeline.predictions_topic}-value", load_schema(PREDICTION_SCHEMA_FILE)
        )
        made = Prediction("GOOD", 1, 2.0, 0.5, 2.0001, 1, "READY", "m", "1", 3, "t", 0, 9, 1, 2_000, "w")
        # A publisher pointed at the predictions topic writes what a foreign producer could: bytes as they are.
        writer = TickPublisher(
            ProducerSettings(**{**pipeline.settings_kwargs(), "ticks_topic": pipeline.predictions_topic})
        )
        writer.publish_raw(b"JUNK", b"\x00\x00\x00\x00\x01not avro")
        writer.publish_raw(b"NAN", codec.encode({**made.to_avro(), "symbol": "NAN", "predicted_price": math.nan}))
        writer.publish_raw(b"GOOD", codec.encode(made.to_avro()))
        assert writer.close() == 0

        def served(symbol: str) -> int:
            return httpx.get(f"{gateway.url}/v1/predictions/{symbol}", timeout=5).status_code

        wait_for(lambda: served("GOOD") == 200, 20, "the prediction after the refused two to be served",
                 diagnostics=gateway.log_tail)  # fmt: skip
        assert served("NAN") == 404, "a NaN prediction was served: its JSON shape has no null there"
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=5).text
        assert 'tickcast_gateway_records_refused_total{reason="non_finite"} 1.0' in metrics
        assert 'tickcast_gateway_records_refused_total{reason="undecodable"} 1.0' in metrics
        said = [json.loads(line) for line in gateway.log_path.read_text().splitlines() if "gateway_non_finite" in line]
        assert [(line["field"], line["offset"]) for line in said] == [("predicted_price", 0)], said
    finally:
        gateway.stop()
