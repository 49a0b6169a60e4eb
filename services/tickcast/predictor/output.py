"""The worker's output path: predictions, dead letters and snapshots through librdkafka.

Faust stays the worker's engine (group membership, assignment, consumption,
offsets, web views). Its asyncio producer, though, costs a produce request and a
socket write for every couple of predictions: in a profile of a draining worker,
``socket.write`` alone was 19% of the process. confluent-kafka batches in its own
C thread, so the event loop only appends to a queue. Same murmur2 partitioner as
Faust, so a prediction lands on its tick's partition number (tested).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from functools import partial
from typing import Any, cast

import structlog
from confluent_kafka import KafkaError, Message, Producer

from tickcast.common.kafka import producer_config

log = structlog.get_logger("tickcast.predictor")


class DeliveryFailed(Exception):
    """The broker did not accept something the worker produced; its ticks must not be acknowledged."""


#: How often :meth:`OutputProducer.delivered` serves delivery reports while it waits.
DELIVERY_POLL_S = 0.002


class OutputProducer:
    """Fire-and-forget sends, grouped into epochs that can be waited for while sending goes on.

    librdkafka's ``flush()`` waits until nothing at all is in flight, which never happens
    while the worker keeps producing. A checkpoint instead closes an epoch with :meth:`mark`
    and awaits :meth:`delivered` for it, while later sends go into the next epoch.
    Delivery reports are served on the event loop's thread only (``poll`` here and in the
    batch loop), so the per-epoch counters need no lock.
    """

    def __init__(self, bootstrap_servers: str, linger_ms: int, **overrides: Any) -> None:
        self._producer = Producer(producer_config(bootstrap_servers, **{"linger.ms": linger_ms, **overrides}))
        self._failures = 0
        self._last_error: str | None = None
        self._epoch = 0
        self._on_delivery = partial(self._delivered_in, 0)
        self._outstanding: Counter[int] = Counter()
        self._failed: Counter[int] = Counter()

    def _delivered_in(self, epoch: int, err: KafkaError | None, msg: Message) -> None:
        self._outstanding[epoch] -= 1
        if err is not None:
            self._failed[epoch] += 1
            self._failures += 1
            self._last_error = f"{msg.topic()}: {err}"
            log.error("delivery_failed", topic=msg.topic(), error=str(err))

    def mark(self) -> int:
        """Close the current epoch and return its number: everything sent so far belongs to it or an earlier one."""
        closed = self._epoch
        self._epoch += 1
        self._on_delivery = partial(self._delivered_in, self._epoch)
        return closed

    async def delivered(self, epoch: int, timeout_s: float = 60.0) -> None:
        """Wait until every send of ``epoch`` and earlier epochs is acknowledged; raise if any of it failed."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._producer.poll(0)
            pending = sum(n for e, n in self._outstanding.items() if e <= epoch)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise DeliveryFailed(f"{pending} messages still undelivered after {timeout_s}s")
            await asyncio.sleep(DELIVERY_POLL_S)  # librdkafka has no awaitable delivery report: poll until done
        failed = sum(n for e, n in self._failed.items() if e <= epoch)
        for done in [e for e in self._outstanding if e <= epoch]:
            del self._outstanding[done]
        for done in [e for e in self._failed if e <= epoch]:
            del self._failed[done]
        if failed:
            raise DeliveryFailed(f"{failed} messages were refused by the broker (last: {self._last_error})")

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        kafka_headers = cast("list[tuple[str, str | bytes | None]] | None", headers)
        while True:
            try:
                if partition is None:
                    self._producer.produce(topic, value, key, headers=kafka_headers, on_delivery=self._on_delivery)
                else:
                    self._producer.produce(
                        topic, value, key, partition=partition, headers=kafka_headers, on_delivery=self._on_delivery
                    )
                # Counted once librdkafka holds it; its report can only arrive in a later poll on this thread.
                self._outstanding[self._epoch] += 1
                return
            except BufferError:
                # librdkafka's queue is full: serve delivery reports until there is room.
                self._producer.poll(0.01)

    def poll(self) -> None:
        """Serve delivery reports without waiting (cheap; call once per batch of sends)."""
        self._producer.poll(0)

    async def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until everything sent so far is delivered; raise if any of it failed."""
        await self.delivered(self.mark(), timeout_s)

    def close(self, timeout_s: float = 30.0) -> int:
        return int(self._producer.flush(timeout_s))
