"""Unit tests for ``tickcast.producer.publisher``: a paced feed starts its clock once its producer can send."""

from __future__ import annotations

from tickcast.common.records import Tick
from tickcast.producer.publisher import publish_all

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
