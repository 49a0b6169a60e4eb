"""Unit tests for ``tickcast.producer.publisher``: a paced feed starts its clock once its producer can send."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError

from tickcast.common.records import Tick
from tickcast.common.refusals import BrokerRefused
from tickcast.producer.publisher import TickPublisher, publish_all
from tickcast.producer.settings import ProducerSettings

#: A new idempotent librdkafka producer holds its first messages until it has a producer id (~0.5 s measured).
READY_AT = 0.5


class HoldingPublisher:
    """Delivers nothing before :data:`READY_AT` on a fake clock, as a producer still warming up."""

    def __init__(self) -> None:
        self.now = 0.0
        self.published: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def publish(self, tick: Tick) -> None:
        self.published.append(self.now)

    def wait_delivered(self, timeout_s: float) -> None:
        self.now = max(self.now, READY_AT)

    def waits(self) -> list[float]:
        """How long each tick waited between its publish call and its delivery."""
        return [round(max(at, READY_AT) - at, 3) for at in self.published]


def ticks(count: int) -> list[Tick]:
    return [Tick("SPY", 100.0 + i, 1.0, 1_000 + i) for i in range(count)]


def test_a_paced_feed_starts_its_clock_after_its_first_tick_is_delivered() -> None:
    publisher = HoldingPublisher()
    sent = publish_all(publisher, ticks(6), rate=10, clock=publisher.clock, sleep=publisher.sleep)  # type: ignore[arg-type]
    assert sent == 6
    # Only the first tick waits for the producer; the others go out at the rate, from when it could send.
    assert publisher.waits() == [0.5, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert publisher.published == [0.0, 0.5, 0.6, 0.7, 0.8, 0.9]


def test_an_unpaced_feed_does_not_wait_for_its_first_delivery() -> None:
    publisher = HoldingPublisher()
    publish_all(publisher, ticks(3), clock=publisher.clock, sleep=publisher.sleep)  # type: ignore[arg-type]
    assert publisher.published == [0.0, 0.0, 0.0]


class Delivered:
    """The message a delivery report names."""

    def topic(self) -> str:
        return "ticks"


def refused_publisher() -> tuple[TickPublisher, list[tuple[bytes | None, bytes | None]]]:
    # librdkafka connects only when it has something to send: nothing here reaches a broker.
    publisher = TickPublisher(ProducerSettings(bootstrap_servers="127.0.0.1:1"), log_level=0)
    sent: list[tuple[bytes | None, bytes | None]] = []
    publisher._producer = SimpleNamespace(  # type: ignore[assignment]
        produce=lambda topic, value, key, headers, on_delivery: sent.append((key, value)), poll=lambda timeout: 0
    )
    return publisher, sent


@pytest.mark.parametrize(
    "error",
    [
        KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Broker: Topic authorization failed"),
        KafkaError(KafkaError.CLUSTER_AUTHORIZATION_FAILED, "Broker: Cluster authorization failed"),
        KafkaError(KafkaError._FATAL, "Fatal error: idempotent producer", fatal=True),
    ],
)
def test_a_refusal_that_retrying_cannot_heal_stops_the_feed_with_one_line(error: KafkaError) -> None:
    # Apache Kafka with ACLs refuses a producer without Write on ticks (or IdempotentWrite before Kafka 2.8);
    # the embedded broker never does. A feed that went on would log one error per tick, forever, and send nothing.
    publisher, sent = refused_publisher()
    publisher.publish(ticks(1)[0])
    publisher._on_delivery(error, Delivered())  # type: ignore[arg-type]
    with pytest.raises(BrokerRefused) as caught:
        publisher.publish(ticks(1)[0])
    assert len(sent) == 1
    assert "\n" not in str(caught.value)
    assert error.name() in str(caught.value) and "'ticks'" in str(caught.value)


def test_a_delivery_that_timed_out_is_counted_and_the_feed_goes_on() -> None:
    publisher, sent = refused_publisher()
    publisher._on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out"), Delivered())  # type: ignore[arg-type]
    publisher.publish(ticks(1)[0])
    assert (publisher.stats.failed, len(sent)) == (1, 1)
