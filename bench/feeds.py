"""Ticks into a pipeline: a pre-produced backlog, priming ticks, and a paced feed in a thread."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from bench.core import BenchError
from tickcast.common.records import Tick
from tickcast.common.topics import partition_for, symbol_key
from tickcast.producer.publisher import RateLimiter
from tickcast.producer.synthetic import SyntheticFeed, make_dynamics, symbol_names
from tickcast.testing.pipeline import Pipeline
from tickcast.testing.waiting import wait_for


@dataclass(frozen=True, slots=True)
class Backlog:
    ticks: int
    symbols: int
    seconds: float
    per_partition: dict[int, int]


def lingering(ms: int) -> dict[str, Any]:
    """librdkafka overrides of a feed's producer: how long it holds a message to batch it.

    >>> lingering(5)
    {'linger.ms': 5}
    """
    return {"linger.ms": ms}


def publish_backlog(pipeline: Pipeline, ticks: int, symbols: int, seed: int = 42) -> Backlog:
    """Pre-produce ``ticks`` synthetic ticks over ``symbols`` symbols, as fast as the producer goes."""
    names = symbol_names(symbols)
    # Event times end about now: the worker rejects ticks more than 5 minutes in the future.
    clock = iter(range(time.time_ns() // 1_000_000 - ticks, 2**62))
    feed = SyntheticFeed(names, seed, clock_ms=lambda: next(clock))
    publisher = pipeline.publisher(record_partitions=False, **lingering(50))
    per_symbol: Counter[str] = Counter()
    started = time.monotonic()
    for _ in range(ticks):
        tick = feed.next_tick()
        per_symbol[tick.symbol] += 1
        publisher.publish(tick)
    undelivered = publisher.close(timeout_s=120)
    if undelivered or publisher.stats.failed:
        raise BenchError(
            f"backlog: {undelivered} undelivered, {publisher.stats.failed} failed ({publisher.stats.last_error})"
        )
    per_partition: Counter[int] = Counter()
    for symbol, count in per_symbol.items():
        per_partition[partition_for(symbol_key(symbol), pipeline.partitions)] += count
    return Backlog(ticks, symbols, time.monotonic() - started, dict(sorted(per_partition.items())))


def prime(
    pipeline: Pipeline,
    answered: Callable[[], int],
    symbols: int,
    seed: int = 7,
    check: Callable[[], None] | None = None,
) -> int:
    """Send one tick per symbol (at the start prices :class:`PacedFeed` uses) and wait until all are answered.

    An assignment alone does not show that fetching, handling and producing all work yet; after this
    they do, so a measurement that follows starts with a processor that is really running.
    """
    publisher = pipeline.publisher(record_partitions=False, **lingering(5))
    now_ms = time.time_ns() // 1_000_000
    for dynamics in make_dynamics(symbol_names(symbols), seed):
        publisher.publish(Tick(dynamics.symbol, dynamics.start_price, 1.0, now_ms, "SYN", None))
    if publisher.close(timeout_s=30):
        raise BenchError("priming ticks were not delivered within 30s")
    what = f"the processor to answer {symbols} priming ticks"
    wait_for(lambda: answered() >= symbols, 120, what, check=check, interval_s=0.05)
    return symbols


class PacedFeed(threading.Thread):
    """Publishes synthetic ticks stamped with the wall clock at ``rate`` per second until stopped or ``limit``."""

    def __init__(
        self, pipeline: Pipeline, rate: float, symbols: int, limit: int | None = None, linger_ms: int = 5, seed: int = 7
    ) -> None:
        super().__init__(name="paced-feed", daemon=True)
        self.pipeline = pipeline
        self.rate = rate
        self.symbols = symbols
        self.limit = limit
        self.linger_ms = linger_ms
        self.seed = seed
        self.sent = 0
        self.started_at = 0.0
        self.finished_at = 0.0
        self.error: BaseException | None = None
        self.acked_ms: dict[tuple[int, int], float] = {}
        """(partition, offset) → ms from the tick's produce call to the broker's acknowledgement (librdkafka's
        own measure: linger, sending and the broker's append)."""
        self._stop_event = threading.Event()

    def _delivered(self, message: Message) -> None:
        latency_s = message.latency()
        if latency_s is not None:
            self.acked_ms[(message.partition() or 0, message.offset() or 0)] = latency_s * 1000

    def run(self) -> None:
        try:
            publisher = self.pipeline.publisher(
                record_partitions=False, on_delivered=self._delivered, **lingering(self.linger_ms)
            )
            feed = SyntheticFeed(symbol_names(self.symbols), self.seed, lambda: time.time_ns() // 1_000_000)
            limiter = RateLimiter(self.rate)
            try:
                # As ``publish_all`` does: the clock starts once the producer has delivered a tick, so the
                # measured ticks do not wait for its warm-up (connections, producer id).
                publisher.publish(feed.next_tick())
                self.sent += 1
                publisher.wait_delivered(30.0)
                self.started_at = time.time()
                while not self._stop_event.is_set() and (self.limit is None or self.sent < self.limit):
                    limiter.wait()
                    publisher.publish(feed.next_tick())
                    self.sent += 1
            finally:
                self.finished_at = time.time()
                publisher.close(timeout_s=30)
        except BaseException as exc:  # reported by the scenario, which owns the thread
            self.error = exc

    def stop(self) -> None:
        self._stop_event.set()
        if self.ident is not None:  # started
            self.join(timeout=60)
