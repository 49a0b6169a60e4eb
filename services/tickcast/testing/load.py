"""Load for chaos tests and the soak: a steady synthetic feed in the background, and a flood of new symbols."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from tickcast.common.contracts import AvroCodec
from tickcast.common.kafka import new_producer
from tickcast.common.records import Tick
from tickcast.common.security import KafkaClientSettings
from tickcast.common.topics import symbol_key
from tickcast.producer.publisher import TickPublisher, publish_all
from tickcast.producer.synthetic import SyntheticFeed, symbol_names

#: Event times of generated ticks start here (2023-11-14) and advance a few ms per tick: valid, never "future".
START_MS = 1_700_000_000_000


def ms_clock(start_ms: int = START_MS, step_ms: int = 3) -> Callable[[], int]:
    """A deterministic event-time clock that advances ``step_ms`` per call.

    >>> clock = ms_clock(10, 2)
    >>> clock(), clock()
    (10, 12)
    """
    ticks = iter(range(start_ms, 2**62, step_ms))
    return lambda: next(ticks)


class BackgroundFeed:
    """Publishes synthetic ticks over ``symbols`` at ``rate`` per second from a thread until stopped.

    ``sent`` counts ticks handed to the producer; :meth:`stop` flushes and raises if any was not delivered,
    so the ticks topic then holds exactly ``sent`` ticks from this feed.
    """

    def __init__(self, publisher: TickPublisher, symbols: int, rate: float, seed: int = 11) -> None:
        self.feed = SyntheticFeed(symbol_names(symbols), seed=seed, clock_ms=ms_clock())
        self.publisher = publisher
        self.rate = rate
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="background-feed", daemon=True)
        self._undelivered = 0
        self._error: BaseException | None = None

    def _counted(self) -> Iterator[Tick]:
        for tick in self.feed:
            yield tick
            self.sent += 1

    def _run(self) -> None:
        try:
            publish_all(self.publisher, self._counted(), rate=self.rate, should_stop=self._stop.is_set)
            self._undelivered = self.publisher.close(timeout_s=120)
        except BaseException as exc:  # reported by stop(), on the test's thread
            self._error = exc

    def start(self) -> BackgroundFeed:
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop publishing, wait for every tick to be delivered, return how many were sent."""
        self._stop.set()
        self._thread.join(timeout=180)
        if self._thread.is_alive():
            raise TimeoutError("the feed did not stop within 180s (its producer could not flush)")
        if self._error is not None:
            raise RuntimeError(f"the feed failed: {self._error!r}") from self._error
        if self._undelivered:
            raise AssertionError(f"{self._undelivered} ticks of the feed were never delivered to the broker")
        return self.sent

    def __enter__(self) -> BackgroundFeed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=180)


def flood_of_new_symbols(
    kafka: KafkaClientSettings, topic: str, codec: AvroCodec, count: int, start_ms: int = START_MS
) -> int:
    """Produce one valid tick for each of ``count`` never-seen symbols (``F0000001``...), as fast as possible.

    Encoded up front and sent in large batches, so 200k ticks take seconds; returns how many were delivered.
    """
    producer = new_producer(
        kafka, **{"linger.ms": 50, "batch.num.messages": 10_000, "queue.buffering.max.messages": 500_000}
    )
    delivered = [0]

    def on_delivery(err: object, _msg: object) -> None:
        if err is None:
            delivered[0] += 1

    for i in range(count):
        symbol = f"F{i:07d}"
        value = codec.encode({"symbol": symbol, "price": 10.0 + i % 97, "size": 1.0, "event_time": start_ms + i})
        while True:
            try:
                producer.produce(topic, value, symbol_key(symbol), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)
    return delivered[0]
