"""Read every partition of the predictions topic, from a bounded window before its end, into the feed.

Cold start: each partition is assigned at ``OFFSET_TAIL(gateway_warm_window)``, i.e. that many records
before its end, so a new replica serves every symbol that had a prediction among the last N records of its
partition within seconds, whatever the topic's history. Symbols quieter than that appear with their next
prediction. Why not a compacted ``predictions.latest`` topic: it would be complete, but it needs a second
write per prediction by the workers, and the embedded broker (Tansu) never compacts, so there it would be
the whole history again. On Tansu the listed end is a lower bound (see tickcast.testing.drain), so the tail
start is earlier than asked: more records are read, never fewer.

No consumer group: nothing is committed and no rebalance ever pauses a replica. The consumer runs in a
thread; each batch is decoded there and handed to the event loop in parts of at most :data:`DELIVERY`.
(Decoding on the loop instead, a few milliseconds per turn, was tried: with 1,000 SSE clients on a busy
machine the loop's turns grew long, decoding fell seconds behind the stream, and the fan-out delay with it.)
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import structlog
from confluent_kafka import OFFSET_END, Consumer, KafkaError, TopicPartition

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE
from tickcast.common.errors import Rejected
from tickcast.common.kafka import new_consumer
from tickcast.gateway.cache import Published, first_non_finite
from tickcast.gateway.feed import PredictionFeed, skip_failed
from tickcast.gateway.metrics import GatewayMetrics
from tickcast.gateway.settings import GatewaySettings

log = structlog.get_logger("tickcast.gateway")

#: librdkafka's logical offset "N before the end" is ``RD_KAFKA_OFFSET_TAIL_BASE - N`` (confluent-kafka does not
#: export the helper).
_OFFSET_TAIL_BASE = -2000
#: Records handed to the event loop per callback at most.
DELIVERY = 100
#: consume() waits this long for a batch: it is the fan-out's added latency, and 50 batches/s cost little.
BATCH_WAIT_S = 0.02


def offset_tail(records: int) -> int:
    """The logical start offset ``records`` before a partition's end (the end itself for 0).

    >>> offset_tail(500), offset_tail(0) == OFFSET_END
    (-2500, True)
    """
    return _OFFSET_TAIL_BASE - records if records > 0 else OFFSET_END


class KafkaSource:
    """Feeds a :class:`PredictionFeed` from Kafka in a background thread, until :meth:`stop`.

    A record that fails in a way nothing foresaw is counted and skipped (:func:`skip_failed`). If the reading
    loop itself fails, the feed is told (``/health`` 503 naming the reader, until it has caught up again) and
    the reader starts over with a new consumer, from where it had handed records over, after
    :attr:`RESTART_FIRST_S`, doubling up to :attr:`RESTART_MAX_S` while it keeps failing.
    """

    #: Seconds before the first restart of a failed reader; each failure in a row doubles it.
    RESTART_FIRST_S = 1.0
    #: The longest wait before a restart; a reader that ran this long before failing starts over at the first.
    RESTART_MAX_S = 30.0

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        # Here, on the starting thread: a subject the registry lacks (before `tickcast schema register` ran) stops
        # the gateway with one line; in the Kafka thread it was a traceback and a replica that never got ready.
        self._codec = AvroCodec(
            open_schema_store(settings.schema_registry_url, settings),
            f"{settings.predictions_topic}-value",
            load_schema(PREDICTION_SCHEMA_FILE),
        )
        self._thread: threading.Thread | None = None
        self._resume: dict[int, int] = {}
        """Per partition, the next offset after what was handed to the loop: where a restarted reader begins."""

    def start(self, feed: PredictionFeed) -> None:
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._supervise, args=(feed, loop), name="gateway-kafka", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _open_consumer(self) -> Consumer:
        """A new consumer of the predictions topic (tests hand the reader a scripted one here)."""
        return new_consumer(
            self.settings,
            # librdkafka wants a group id even for assign(); it is never joined and nothing is committed.
            f"tickcast-gateway-{uuid.uuid4().hex[:12]}",
            **{
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 20,
            },
        )

    def _supervise(self, feed: PredictionFeed, loop: asyncio.AbstractEventLoop) -> None:
        """Run the reader until :meth:`stop`, restarting it with backoff when it fails.

        A reader that ended on an exception used to end the thread alone: the gateway went on serving ever
        older predictions with ``/health`` ok.
        """
        failures = 0
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self._run(feed, loop)
                return
            except Exception as exc:
                if self._stop.is_set() or loop.is_closed():
                    return  # the app is shutting down (handing records over to a closed loop fails)
                if time.monotonic() - began >= self.RESTART_MAX_S:
                    failures = 0  # it had been reading well: a new failure, not one more of a series
                failures += 1
                delay = min(self.RESTART_MAX_S, self.RESTART_FIRST_S * 2 ** (failures - 1))
                error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "gateway_reader_failed",
                    topic=self.settings.predictions_topic,
                    failures=failures,
                    restart_in_s=delay,
                    error=error,
                )
                reason = (
                    f"the predictions reader failed ({error}); restarting it after {delay:g}s (failure {failures} in"
                    " a row); ready again once it has read every partition to its end"
                )
                try:
                    loop.call_soon_threadsafe(feed.reader_failed, reason)
                except RuntimeError:
                    return  # the loop closed meanwhile: shutting down
                self._stop.wait(delay)

    def _run(self, feed: PredictionFeed, loop: asyncio.AbstractEventLoop) -> None:
        """Read until :meth:`stop`; raises whatever fails outside one record (:meth:`_supervise` restarts it)."""
        settings, codec = self.settings, self._codec
        consumer = self._open_consumer()
        topic, dlq = settings.predictions_topic, settings.dlq_topic
        try:
            # Dead letters are only counted (for the dashboard), from now on: never decoded, never served.
            dlq_meta = consumer.list_topics(dlq, timeout=10).topics.get(dlq)
            dlq_partitions = list(dlq_meta.partitions) if dlq_meta is not None and dlq_meta.error is None else []
            # After a restart, each partition from where the last reader left it: a gap would reach no client
            # as a reset (the ring would not know), and what the loop already has it skips.
            start = offset_tail(settings.gateway_warm_window)
            consumer.assign(
                [TopicPartition(topic, p, self._resume.get(p, start)) for p in range(settings.partitions)]
                + [TopicPartition(dlq, p, OFFSET_END) for p in dlq_partitions]
            )
            log.info("gateway_reading", topic=topic, partitions=settings.partitions)
            while not self._stop.is_set():
                messages = consumer.consume(num_messages=2000, timeout=BATCH_WAIT_S)
                if not messages:
                    continue
                received_at = time.monotonic()
                batch: list[Published] = []
                ends: list[tuple[int, int]] = []
                read_to: dict[int, int] = {}
                dead_letters = 0
                for message in messages:
                    error = message.error()
                    partition, offset = message.partition() or 0, message.offset() or 0
                    if message.topic() == dlq:
                        dead_letters += error is None
                        continue
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            ends.append((partition, offset))
                            read_to[partition] = offset
                        else:
                            log.warning("gateway_kafka_error", error=str(error))
                        continue
                    read_to[partition] = offset + 1
                    try:
                        item = accept(codec, feed.metrics, partition, offset, message.value() or b"", received_at)
                    except Exception as exc:
                        # No refusal foresaw it (a Protobuf schema's id was one, until the registry store refused
                        # them): skip the record, not the reader.
                        skip_failed(feed.metrics, topic, partition, offset, "decode", exc)
                        continue
                    if item is not None:
                        batch.append(item)
                # A long batch (a cold start, a catch-up) goes to the loop in parts, each one callback: between
                # two, the loop answers GETs and writes to clients instead of fanning out 2,000 records at once.
                *before, last = parts(batch, DELIVERY)
                for part in before:
                    loop.call_soon_threadsafe(_deliver, feed, part, [], 0)
                # Ends after every record before them (a partition counts as read once its records are in).
                loop.call_soon_threadsafe(_deliver, feed, last, ends, dead_letters)
                self._resume.update(read_to)
        finally:
            consumer.close()


def accept(
    codec: AvroCodec, metrics: GatewayMetrics, partition: int, offset: int, value: bytes, received_at: float
) -> Published | None:
    """The record at ``partition``/``offset`` as served, or None when refused (counted and logged): it does not
    decode, or holds a NaN or an infinity. Raises only what no check foresaw."""
    try:
        record = codec.decode(value)
    except Rejected as rejected:
        metrics.refused.labels("undecodable").inc()
        log.warning("gateway_undecodable", partition=partition, offset=offset, error=str(rejected))
        return None
    non_finite = first_non_finite(record)
    if non_finite is not None:
        metrics.refused.labels("non_finite").inc()
        log.warning("gateway_non_finite", partition=partition, offset=offset, field=non_finite)
        return None
    return Published.of_record(partition, offset, record, received_at)


def parts(batch: list[Published], size: int) -> list[list[Published]]:
    """``batch`` cut into lists of at most ``size``, in order; one empty list for an empty batch.

    >>> [len(part) for part in parts([Published(0, n, "A", 0.0, 0.0, "{}") for n in range(250)], 100)]
    [100, 100, 50]
    >>> parts([], 100)
    [[]]
    """
    return [batch[start : start + size] for start in range(0, len(batch), size)] or [[]]


def _deliver(feed: PredictionFeed, batch: list[Published], ends: list[tuple[int, int]], dead_letters: int) -> None:
    feed.ingest(batch)
    feed.pipeline.dead_letters += dead_letters
    feed.metrics.dead_letters.inc(dead_letters)
    for partition, offset in ends:
        feed.reached_end(partition, offset)
