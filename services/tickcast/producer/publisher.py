"""Publish ticks to Kafka in the Confluent wire format, keyed by symbol, at a controlled rate."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from confluent_kafka import KafkaError, Message

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import TICK_SCHEMA_FILE
from tickcast.common.kafka import new_producer
from tickcast.common.records import Tick
from tickcast.common.refusals import BrokerRefused
from tickcast.common.topics import symbol_key
from tickcast.producer.settings import ProducerSettings

log = structlog.get_logger("tickcast.producer")

#: Delivery errors no retry heals: Apache Kafka's ACLs (Write on the topic; IdempotentWrite on the cluster
#: before Kafka 2.8). With these, and with any fatal error of the idempotent producer, every later tick fails too.
REFUSALS = frozenset({KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED})


def refusal(err: KafkaError, topic: str) -> str | None:
    """One line for a delivery error that stops the feed, or None for one worth going on after.

    >>> refusal(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "denied"), "ticks")
    "Kafka refused ticks to topic 'ticks': TOPIC_AUTHORIZATION_FAILED: denied; grant this principal Write and \
Describe on it (and IdempotentWrite on the cluster before Kafka 2.8)"
    >>> refusal(KafkaError(KafkaError._MSG_TIMED_OUT, "timed out"), "ticks") is None
    True
    """
    if not (err.fatal() or err.code() in REFUSALS):
        return None
    return (
        f"Kafka refused ticks to topic {topic!r}: {err.name()}: {err.str()}; grant this principal Write and "
        "Describe on it (and IdempotentWrite on the cluster before Kafka 2.8)"
    )


@dataclass(slots=True)
class DeliveryStats:
    """Counts from the broker's delivery reports."""

    delivered: int = 0
    failed: int = 0
    last_error: str | None = None
    refused: str | None = None
    """Set by an error no retry heals (:func:`refusal`): the next publish raises it."""
    partitions: dict[str, int] = field(default_factory=dict)


def tick_codec(settings: ProducerSettings) -> AvroCodec:
    """The codec for ticks, with ids from the configured schema store."""
    return AvroCodec(
        open_schema_store(settings.schema_registry_url, settings),
        f"{settings.ticks_topic}-value",
        load_schema(TICK_SCHEMA_FILE),
    )


class TickPublisher:
    """A confluent-kafka producer for ticks; :meth:`publish` never blocks for long, :meth:`close` flushes."""

    def __init__(
        self,
        settings: ProducerSettings,
        record_partitions: bool = False,
        *,
        on_delivered: Callable[[Message], None] | None = None,
        **overrides: Any,
    ) -> None:
        """``on_delivered`` sees every delivered message (on the thread that polls), e.g. to time its delivery."""
        self.settings = settings
        self.topic = settings.ticks_topic
        self.codec = tick_codec(settings)
        self.stats = DeliveryStats()
        self._record_partitions = record_partitions
        self._on_delivered = on_delivered
        self._producer = new_producer(settings, **{"linger.ms": settings.linger_ms, **overrides})

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.stats.failed += 1
            self.stats.last_error = str(err)
            log.error("tick_delivery_failed", error=str(err), topic=msg.topic())
            self.stats.refused = self.stats.refused or refusal(err, self.topic)
            return
        self.stats.delivered += 1
        if self._on_delivered is not None:
            self._on_delivered(msg)
        if self._record_partitions:
            key = msg.key()
            if key is not None:
                self.stats.partitions[key.decode()] = int(msg.partition() or 0)

    def _reporting_to(self, on_delivered: Callable[[Message], None]) -> Callable[[KafkaError | None, Message], None]:
        def report(err: KafkaError | None, msg: Message) -> None:
            self._on_delivery(err, msg)
            if err is None:
                on_delivered(msg)

        return report

    def publish(self, tick: Tick) -> None:
        self.publish_raw(symbol_key(tick.symbol), self.codec.encode(tick.to_avro()))

    def publish_raw(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        on_delivered: Callable[[Message], None] | None = None,
    ) -> None:
        """Send bytes as they are (used for replaying dead letters and for tests of bad input).

        ``on_delivered`` sees this message once the broker confirmed it (not if its delivery failed).
        Raises :class:`BrokerRefused` once the broker refused an earlier tick for good (one line, exit 1 from
        the CLI): a feed that went on would send nothing and log an error per tick.
        """
        if self.stats.refused is not None:
            raise BrokerRefused(self.stats.refused)
        report = self._on_delivery if on_delivered is None else self._reporting_to(on_delivered)
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, headers=headers, on_delivery=report)
                break
            except BufferError:
                # Local queue full: serve delivery reports until there is room.
                self._producer.poll(0.05)
        self._producer.poll(0)

    def wait_delivered(self, timeout_s: float) -> None:
        """Wait until everything published so far is delivered (or failed); raise :class:`TimeoutError` if not.

        A paced feed calls this after its first tick, before it starts its clock: a new idempotent producer
        holds its first messages until it is connected and has a producer id (measured with librdkafka on
        the embedded broker: ~0.5 s when the first try finds no connection up), and ticks stamped while it
        waits would all go out late, in one burst. Asking for metadata first is not enough: librdkafka may
        answer it on the bootstrap connection and still retry the producer id only on its 0.5 s timer.
        """
        undelivered = int(self._producer.flush(timeout_s))
        if undelivered:
            raise TimeoutError(f"{undelivered} tick(s) to {self.topic} not delivered within {timeout_s:g}s")

    def close(self, timeout_s: float = 30.0) -> int:
        """Flush; return how many messages are still undelivered (0 on success)."""
        return int(self._producer.flush(timeout_s))


@dataclass(slots=True)
class RateLimiter:
    """Paces calls to ``rate`` per second on average; ``rate <= 0`` means no limit.

    >>> t = [0.0]
    >>> limiter = RateLimiter(rate=10, clock=lambda: t[0], sleep=lambda s: t.__setitem__(0, t[0] + s))
    >>> for _ in range(20): limiter.wait()
    >>> round(t[0], 1)
    1.9
    """

    rate: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], object] = time.sleep
    _start: float | None = None
    _count: int = 0

    def wait(self) -> None:
        if self.rate <= 0:
            return
        now = self.clock()
        if self._start is None:
            self._start = now
        due = self._start + self._count / self.rate
        if due > now:
            self.sleep(due - now)  # pacing to the requested rate
        self._count += 1


def publish_all(
    publisher: TickPublisher,
    ticks: Iterable[Tick],
    rate: float = 0.0,
    limit: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    warm_up_timeout_s: float = 30.0,
) -> int:
    """Publish ticks (at most ``limit``) at ``rate`` per second until exhausted or ``should_stop()``; return count.

    A paced feed (``rate > 0``) waits for its first tick's delivery (:meth:`TickPublisher.wait_delivered`)
    before its clock starts, so that no later tick waits for the producer's warm-up.
    """
    limiter = RateLimiter(rate, clock, sleep)
    sent = 0
    for tick in ticks:
        if (limit is not None and sent >= limit) or should_stop():
            break
        if sent == 0 and rate > 0:
            publisher.publish(tick)
            publisher.wait_delivered(warm_up_timeout_s)
        else:
            limiter.wait()
            publisher.publish(tick)
        sent += 1
    return sent
