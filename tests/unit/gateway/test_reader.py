"""The gateway's predictions reader keeps reading whatever one record does, and says so when its loop fails.

The reader runs :class:`KafkaSource` itself, with a scripted consumer in place of librdkafka's (its one seam,
``_open_consumer``): the batches a test puts in the script are what ``consume()`` returns, in order.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from fastapi.testclient import TestClient

from tests.unit.gateway.fakes import make_feed, prediction
from tickcast.common.contracts import AvroCodec, SchemaStore, frame, load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE
from tickcast.gateway.app import create_app
from tickcast.gateway.cache import Published
from tickcast.gateway.feed import PredictionFeed
from tickcast.gateway.settings import GatewaySettings
from tickcast.gateway.source import KafkaSource

T = TypeVar("T")
Step = list[Message] | BaseException
#: A schema id whose lookup raises what no caller expects, as the registry store's JSONDecodeError did on a
#: Protobuf schema before f51eef7: the record's decoding fails in a way nothing foresaw.
BROKEN_ID = 4242
DEADLINE_S = 5.0


class StoreThatBreaks(SchemaStore):
    """The shipped catalogue, except that looking up :data:`BROKEN_ID` raises a ValueError."""

    def __init__(self) -> None:
        self._catalogue = open_schema_store(None)

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        return self._catalogue.register(subject, schema)

    def lookup(self, schema_id: int) -> dict[str, Any] | None:
        if schema_id == BROKEN_ID:
            raise ValueError("Expecting value: line 1 column 1 (char 0)")
        return self._catalogue.lookup(schema_id)


class ScriptedConsumer:
    """The part of librdkafka's consumer the reader uses: no dead-letter topic, and ``consume()`` hands out the
    script's steps (a step that is an exception is raised there, as librdkafka raises a fatal error)."""

    def __init__(self, script: queue.Queue[Step], assigned: list[list[tuple[int, int]]], topic: str) -> None:
        self._script, self._assigned, self._topic = script, assigned, topic

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        return SimpleNamespace(topics={})

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._assigned.append([(tp.partition, tp.offset) for tp in partitions if tp.topic == self._topic])

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        try:
            step = self._script.get(timeout=timeout)
        except queue.Empty:
            return []
        if isinstance(step, BaseException):
            raise step
        return step

    def close(self) -> None:
        pass


class ScriptedSource(KafkaSource):
    """The Kafka source over :class:`ScriptedConsumer`s (a new one per start, one script for all), its codec on
    :class:`StoreThatBreaks`, and restarts after 10 ms instead of a second."""

    RESTART_FIRST_S = 0.01

    def __init__(self, settings: GatewaySettings) -> None:
        super().__init__(settings)
        self._codec = AvroCodec(
            StoreThatBreaks(), f"{settings.predictions_topic}-value", load_schema(PREDICTION_SCHEMA_FILE)
        )
        self.script: queue.Queue[Step] = queue.Queue()
        self.assigned: list[list[tuple[int, int]]] = []
        """The predictions partitions and start offsets of each consumer, in the order they were assigned."""

    def _open_consumer(self) -> Any:
        return ScriptedConsumer(self.script, self.assigned, self.settings.predictions_topic)

    def record(self, symbol: str, partition: int, offset: int, schema_id: int | None = None) -> Message:
        value = self._codec.encode(prediction(symbol, offset).to_avro())
        if schema_id is not None:
            value = frame(schema_id, value[5:])
        return Message(topic=self.settings.predictions_topic, partition=partition, offset=offset, value=value)

    def end(self, partition: int, offset: int) -> Message:
        eof = KafkaError(KafkaError._PARTITION_EOF)
        return Message(topic=self.settings.predictions_topic, partition=partition, offset=offset, error=eof)


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """``probe()`` until ``done`` says so, or fail after :data:`DEADLINE_S` with ``what`` and the last result."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        result = probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            shown = result.json() if hasattr(result, "json") else result
            raise AssertionError(f"after {DEADLINE_S:g} s, {what}: {getattr(result, 'status_code', '')} {shown}")
        time.sleep(0.02)  # the poll's period


def sample(feed: PredictionFeed, name: str, **labels: str) -> float | None:
    return feed.metrics.registry.get_sample_value(name, labels)


def test_a_record_whose_decoding_raises_the_unforeseen_is_counted_and_skipped_and_the_reader_reads_on() -> None:
    settings = GatewaySettings(partitions=2)
    source, feed = ScriptedSource(settings), PredictionFeed(settings)
    with TestClient(create_app(feed, source)) as client:
        source.script.put(
            [
                source.record("SPY", 0, 0, schema_id=BROKEN_ID),
                source.record("BAC", 0, 1),
                source.end(0, 2),
                source.end(1, 0),
            ]
        )
        wait_for(
            lambda: client.get("/health"),
            lambda answer: answer.status_code == 200,
            "the reader never read past the record whose schema lookup raised ValueError: /health still answered",
        )
        assert client.get("/v1/predictions/BAC").json()["offset"] == 1
        assert client.get("/v1/predictions/SPY").status_code == 404
        assert sample(feed, "tickcast_gateway_records_refused_total", reason="failed") == 1


def test_a_record_whose_applying_raises_costs_no_other_record(monkeypatch: pytest.MonkeyPatch) -> None:
    feed = make_feed(partitions=1)
    observe = feed.pipeline.observe

    def observe_that_breaks(item: Published) -> None:
        if item.symbol == "SPY":
            raise OSError("a record in a state nothing foresaw")
        observe(item)

    # Applying SPY raises. (Not a client's write: that drops the client, see test_fanout, and costs no record.)
    monkeypatch.setattr(feed.pipeline, "observe", observe_that_breaks)
    now = time.monotonic()
    spy, bac = (
        Published.of(0, offset, prediction(symbol, offset), now) for offset, symbol in enumerate(["SPY", "BAC"])
    )
    try:
        feed.ingest([spy, bac])
    except OSError as exc:
        raise AssertionError(
            f"one record's failure escaped ingest, and the records after it were lost: {exc!r}"
        ) from exc
    assert feed.cache.get("BAC") == bac and feed.ring(0).head == 1
    assert sample(feed, "tickcast_gateway_records_refused_total", reason="failed") == 1


@pytest.mark.parametrize(
    "failure",
    [KafkaException(KafkaError(KafkaError._FATAL, "fatal consumer error")), RuntimeError("a bug in the loop")],
    ids=["kafka_fatal", "runtime_error"],
)
def test_a_failed_reading_loop_answers_503_naming_the_reader_then_resumes_where_it_had_read(
    failure: BaseException,
) -> None:
    settings = GatewaySettings(partitions=2)
    source, feed = ScriptedSource(settings), PredictionFeed(settings)
    with TestClient(create_app(feed, source)) as client:
        source.script.put([source.record("SPY", 0, 7), source.end(0, 8), source.end(1, 3)])
        wait_for(lambda: client.get("/health"), lambda answer: answer.status_code == 200, "never ready: /health")

        source.script.put(failure)
        failed = wait_for(
            lambda: client.get("/health"),
            lambda answer: answer.status_code == 503,
            f"the reading loop raised {failure!r}, yet /health still answered",
        ).json()
        assert failed["status"] == "reader_failed" and not failed["ready"], failed
        assert "reader" in failed["reason"] and str(failure) in failed["reason"], failed
        assert sample(feed, "tickcast_gateway_reader_failures_total") == 1
        assert sample(feed, "tickcast_gateway_ready") == 0

        # Restarted from where it had read: the next offset of each partition, neither re-read nor skipped.
        wait_for(lambda: list(source.assigned), lambda assigned: len(assigned) == 2, "no restart; assignments")
        assert source.assigned[1] == [(0, 8), (1, 3)]
        source.script.put([source.record("SPY", 0, 8), source.end(0, 9), source.end(1, 3)])
        healthy = wait_for(
            lambda: client.get("/health"), lambda answer: answer.status_code == 200, "not ok after the restart"
        ).json()
        assert healthy["status"] == "ok" and healthy["reason"] is None, healthy
        assert client.get("/v1/predictions/SPY").json()["offset"] == 8
        assert sample(feed, "tickcast_gateway_ready") == 1
