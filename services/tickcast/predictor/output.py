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
from typing import Any, cast

import structlog
from confluent_kafka import KafkaError, Message, Producer

from tickcast.common.kafka import producer_config

log = structlog.get_logger("tickcast.predictor")


class DeliveryFailed(Exception):
    """The broker did not accept something the worker produced; its ticks must not be acknowledged."""


class OutputProducer:
    """Fire-and-forget sends with a flush that reports whether everything since the last flush arrived."""

    def __init__(self, bootstrap_servers: str, linger_ms: int, **overrides: Any) -> None:
        self._producer = Producer(producer_config(bootstrap_servers, **{"linger.ms": linger_ms, **overrides}))
        self._failures = 0
        self._last_error: str | None = None

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures += 1
            self._last_error = f"{msg.topic()}: {err}"
            log.error("delivery_failed", topic=msg.topic(), error=str(err))

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
                return
            except BufferError:
                # librdkafka's queue is full: serve delivery reports until there is room.
                self._producer.poll(0.01)

    def poll(self) -> None:
        """Serve delivery reports without waiting (cheap; call once per batch of sends)."""
        self._producer.poll(0)

    async def flush(self, timeout_s: float = 60.0) -> None:
        """Wait, off the event loop, until everything sent so far is delivered; raise if any of it failed."""
        remaining = await asyncio.get_running_loop().run_in_executor(None, self._producer.flush, timeout_s)
        failures, self._failures = self._failures, 0
        if remaining:
            raise DeliveryFailed(f"{remaining} messages still undelivered after {timeout_s}s")
        if failures:
            raise DeliveryFailed(f"{failures} messages were refused by the broker (last: {self._last_error})")

    def close(self, timeout_s: float = 30.0) -> int:
        return int(self._producer.flush(timeout_s))
