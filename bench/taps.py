"""Reading a pipeline's predictions as they arrive, stamped with when the bench saw them.

Every tap reads with a manual assignment from the beginning (no group join to wait for).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from bench.core import BenchError
from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE
from tickcast.common.errors import Rejected
from tickcast.common.kafka import new_consumer
from tickcast.testing.pipeline import Pipeline
from tickcast.testing.waiting import wait_for


@dataclass(frozen=True, slots=True)
class Seen:
    """One prediction as the bench saw it: when it arrived and the fields that time it."""

    received_s: float
    symbol: str
    partition: int
    offset: int
    produced_ms: int
    predicted_us: int
    worker: str


def decode_prediction(codec: AvroCodec, received: float, value: bytes) -> Seen:
    """One prediction as ``codec`` (tickcast's prediction contract) reads it, whoever wrote it (a peer's own serde
    too); a record it does not read is a :class:`BenchError`, so the run it came from is not measured.

    >>> codec = AvroCodec(open_schema_store(None), "predictions-value", load_schema(PREDICTION_SCHEMA_FILE))
    >>> ticks = AvroCodec(open_schema_store(None), "ticks-value", load_schema("tick.avsc"))
    >>> tick = ticks.encode({"symbol": "SPY", "price": 1.5, "size": 1.0, "event_time": 0})
    >>> decode_prediction(codec, 0.0, tick)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bench.core.BenchError: a prediction does not decode with tickcast's prediction contract: bad_avro: ...
    """
    try:
        record = codec.decode(value)
    except Rejected as exc:
        # fastavro's resolution error quotes both schemas whole: the start says which record and why.
        raise BenchError(f"a prediction does not decode with tickcast's prediction contract: {str(exc)[:200]}") from exc
    return Seen(
        received,
        record["symbol"],
        record["source_partition"],
        record["source_offset"],
        record["tick_produced_at"],
        record["predicted_at"],
        record["worker"],
    )


class PredictionTap:
    """Reads a predictions topic from the beginning with a manual assignment (no group join to wait for).

    :meth:`poll` returns as soon as anything arrived, then takes whatever else is queued, and stamps the
    batch with the time it was handed over, so arrival times are not delayed by batching.
    """

    def __init__(self, pipeline: Pipeline, fetch_wait_ms: int = 5, fetch_min_bytes: int = 1) -> None:
        self.codec = AvroCodec(
            open_schema_store(None), f"{pipeline.predictions_topic}-value", load_schema(PREDICTION_SCHEMA_FILE)
        )
        self._consumer = new_consumer(
            pipeline.kafka,
            f"bench-tap-{uuid.uuid4().hex[:10]}",
            **{
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": fetch_wait_ms,
                "fetch.min.bytes": fetch_min_bytes,
            },
        )
        self._consumer.assign(
            [TopicPartition(pipeline.predictions_topic, p, OFFSET_BEGINNING) for p in range(pipeline.partitions)]
        )
        self.errors: list[str] = []

    def poll_raw(self, timeout_s: float = 0.2, max_records: int = 5000) -> tuple[float, list[bytes]]:
        """(arrival time, undecoded values) of whatever arrived; errors other than end-of-partition are kept."""
        first = self._consumer.poll(timeout_s)
        if first is None:
            return time.time(), []
        messages = [first, *self._consumer.consume(num_messages=max_records, timeout=0)]
        received = time.time()
        values: list[bytes] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self.errors.append(str(error))
                continue
            values.append(message.value() or b"")
        return received, values

    def decode(self, received: float, value: bytes) -> Seen:
        return decode_prediction(self.codec, received, value)

    def poll(self, timeout_s: float = 0.2, max_records: int = 5000) -> list[Seen]:
        received, values = self.poll_raw(timeout_s, max_records)
        return [self.decode(received, value) for value in values]

    def close(self) -> None:
        self._consumer.close()


class RecordingTap(threading.Thread):
    """Keeps every prediction's bytes as it arrives and decodes only when asked, so it costs little CPU
    while a drain is being measured.

    It follows the head of the topic during the run instead of reading the whole topic afterwards:
    Tansu was seen answering fetches of older batches written by aiokafka with empty record sets.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(name="recording-tap", daemon=True)
        # Few, large fetches: arrival times do not matter here, and the broker's CPU is being measured.
        self.tap = PredictionTap(pipeline, fetch_wait_ms=200, fetch_min_bytes=256 * 1024)
        self.values: list[tuple[float, bytes]] = []
        self.error: BaseException | None = None
        self._decoded: list[Seen] = []
        self._stop_event = threading.Event()

    @property
    def count(self) -> int:
        return len(self.values)

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                received, values = self.tap.poll_raw(0.2, 20000)
                self.values.extend((received, value) for value in values)
        except BaseException as exc:  # reported by the scenario
            self.error = exc
        finally:
            self.tap.close()

    def decoded(self) -> list[Seen]:
        """Everything recorded so far, decoded (only the part not decoded before)."""
        recorded = len(self.values)
        self._decoded.extend(self.tap.decode(t, v) for t, v in self.values[len(self._decoded) : recorded])
        return self._decoded

    def wait_answered(self, expected: int, timeout_s: float, what: str, check: Callable[[], None]) -> list[Seen]:
        """Wait until ``expected`` distinct ticks were answered (duplicates do not count); return all seen."""
        deadline = time.monotonic() + timeout_s
        need = expected
        while True:

            def enough(need: int = need) -> bool:
                if self.error is not None:
                    raise BenchError(f"{what}: the tap failed: {self.error!r}")
                return self.count >= need

            remaining_s = max(0.0, deadline - time.monotonic())
            wait_for(enough, remaining_s, f"{expected} {what}", check=check, diagnostics=self._recorded)
            seen = self.decoded()
            answered = len({(s.partition, s.offset) for s in seen})
            if answered >= expected:
                return seen
            need = self.count + expected - answered

    def _recorded(self) -> str:
        return f"{self.count} predictions recorded"

    def stop(self) -> None:
        self._stop_event.set()
        if self.ident is not None:  # started
            self.join(timeout=30)


class LiveTap(threading.Thread):
    """A :class:`PredictionTap` in a background thread, collecting everything it sees into :attr:`seen`."""

    def __init__(self, pipeline: Pipeline, fetch_wait_ms: int = 5) -> None:
        super().__init__(name="live-tap", daemon=True)
        self.tap = PredictionTap(pipeline, fetch_wait_ms=fetch_wait_ms)
        self.seen: list[Seen] = []
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                self.seen.extend(self.tap.poll(0.1))
        except BaseException as exc:  # reported by the scenario
            self.error = exc
        finally:
            self.tap.close()

    def answered(self) -> int:
        return len({(s.partition, s.offset) for s in list(self.seen)})

    def stop(self) -> None:
        self._stop_event.set()
        if self.ident is not None:  # started
            self.join(timeout=30)
