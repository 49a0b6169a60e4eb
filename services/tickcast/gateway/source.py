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
from confluent_kafka import OFFSET_END, KafkaError, TopicPartition

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE
from tickcast.common.errors import Rejected
from tickcast.common.kafka import new_consumer
from tickcast.gateway.cache import Published, first_non_finite
from tickcast.gateway.feed import PredictionFeed
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
    """Feeds a :class:`PredictionFeed` from Kafka in a background thread, until :meth:`stop`."""

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

    def start(self, feed: PredictionFeed) -> None:
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, args=(feed, loop), name="gateway-kafka", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, feed: PredictionFeed, loop: asyncio.AbstractEventLoop) -> None:
        settings, codec = self.settings, self._codec
        consumer = new_consumer(
            settings,
            # librdkafka wants a group id even for assign(); it is never joined and nothing is committed.
            f"tickcast-gateway-{uuid.uuid4().hex[:12]}",
            **{
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 20,
            },
        )
        topic, dlq = settings.predictions_topic, settings.dlq_topic
        try:
            # Dead letters are only counted (for the dashboard), from now on: never decoded, never served.
            dlq_meta = consumer.list_topics(dlq, timeout=10).topics.get(dlq)
            dlq_partitions = list(dlq_meta.partitions) if dlq_meta is not None and dlq_meta.error is None else []
            start = offset_tail(settings.gateway_warm_window)
            consumer.assign(
                [TopicPartition(topic, p, start) for p in range(settings.partitions)]
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
                        else:
                            log.warning("gateway_kafka_error", error=str(error))
                        continue
                    try:
                        record = codec.decode(message.value() or b"")
                    except Rejected as rejected:
                        feed.metrics.refused.labels("undecodable").inc()
                        log.warning("gateway_undecodable", partition=partition, offset=offset, error=str(rejected))
                        continue
                    non_finite = first_non_finite(record)
                    if non_finite is not None:
                        feed.metrics.refused.labels("non_finite").inc()
                        log.warning("gateway_non_finite", partition=partition, offset=offset, field=non_finite)
                        continue
                    batch.append(Published.of_record(partition, offset, record, received_at))
                # A long batch (a cold start, a catch-up) goes to the loop in parts, each one callback: between
                # two, the loop answers GETs and writes to clients instead of fanning out 2,000 records at once.
                *before, last = parts(batch, DELIVERY)
                for part in before:
                    loop.call_soon_threadsafe(_deliver, feed, part, [], 0)
                # Ends after every record before them (a partition counts as read once its records are in).
                loop.call_soon_threadsafe(_deliver, feed, last, ends, dead_letters)
        except RuntimeError:
            pass  # the loop closed under us: the app is shutting down
        finally:
            consumer.close()


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
