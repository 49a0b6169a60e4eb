"""The worker's output path: predictions, dead letters and snapshots through librdkafka.

Faust stays the worker's engine (group membership, assignment, consumption,
offsets, web views). Its asyncio producer, though, costs a produce request and a
socket write for every couple of predictions: in a profile of a draining worker,
``socket.write`` alone was 19% of the process. confluent-kafka batches in its own
C thread, so the event loop only appends to a queue. Same murmur2 partitioner as
Faust, so a prediction lands on its tick's partition number (tested).

Three ways a send can go wrong, each with its own answer:

* librdkafka refuses it at once (too large, bad header): :class:`ProduceRefused`, for the
  caller to handle per record (see :mod:`tickcast.predictor.publishing`).
* Its queue is full: :meth:`OutputProducer.send` returns False and the caller awaits
  :meth:`OutputProducer.wait_for_room`, which yields to the event loop (backpressure).
* The broker finally refuses it (a delivery report with an error, e.g. after
  ``message.timeout.ms``): remembered per *source partition* (the ticks partition whose
  records it answers) until that partition is rewound, and raised by every
  :meth:`OutputProducer.delivered` meanwhile, so no checkpoint can commit past it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message

from tickcast.common.kafka import new_producer
from tickcast.common.security import KafkaClientSettings

log = structlog.get_logger("tickcast.predictor")

#: librdkafka's defaults, used when the overrides do not say otherwise.
LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000


class DeliveryFailed(Exception):
    """The broker did not accept something the worker produced; its ticks must not be acknowledged.

    ``partitions`` are the source partitions with a refused output: they must be rewound (re-read
    from their last checkpoint). Empty when the failure was only a wait that timed out.
    """

    def __init__(self, message: str, partitions: Iterable[int] = ()) -> None:
        super().__init__(message)
        self.partitions = frozenset(partitions)


class ProduceRefused(Exception):
    """librdkafka refused a message at ``produce()`` (too large, invalid); nothing of it was queued."""


#: How often :meth:`OutputProducer.delivered` and :meth:`OutputProducer.wait_for_room` serve delivery reports.
DELIVERY_POLL_S = 0.002

#: After a full queue, sending resumes once it has drained to this share of what it held (hysteresis).
ROOM_FRACTION = 0.5

#: Sends after which :meth:`OutputProducer.send` serves delivery reports itself. The worker polls once per fetch,
#: after its last outcome; a drain's fetch can bring tens of thousands of ticks, and librdkafka counts a
#: delivered message in its queue until its report is served, so the queue would fill and sends would wait.
POLL_EVERY_SENDS = 1000


class OutputProducer:
    """Fire-and-forget sends, grouped into epochs that can be waited for while sending goes on.

    librdkafka's ``flush()`` waits until nothing at all is in flight, which never happens
    while the worker keeps producing. A checkpoint instead closes an epoch with :meth:`mark`
    and awaits :meth:`delivered` for it, while later sends go into the next epoch.
    Delivery reports are served on the event loop's thread only (``poll`` here and in the
    batch loop), so the per-epoch counters need no lock.
    """

    def __init__(self, kafka: KafkaClientSettings, linger_ms: int, **overrides: Any) -> None:
        self._producer = new_producer(kafka, **{"linger.ms": linger_ms, **overrides})
        self.max_message_bytes = int(overrides.get("message.max.bytes", LIBRDKAFKA_MESSAGE_MAX_BYTES))
        """The largest message librdkafka accepts from this producer (key, value, headers and framing)."""
        self._epoch = 0
        # A plain dict, not a Counter: every delivery report updates it, and a Counter's item access costs more.
        self._outstanding: dict[int, int] = {}
        self._callbacks: dict[int | None, Callable[[KafkaError | None, Message], None]] = {}
        self.refused: dict[int, str] = {}
        """Source partition -> last refusal, for every partition with a refused output not yet rewound."""
        self._refused_unsourced: Counter[int] = Counter()
        self._forgotten_through: dict[int, int] = {}
        self._unpolled = 0

    def _refused_in(self, epoch: int, source: int | None, err: KafkaError, msg: Message) -> None:
        error = f"{msg.topic()}: {err}"
        if source is None:
            self._refused_unsourced[epoch] += 1
            log.error("delivery_failed", topic=msg.topic(), error=str(err))
        elif epoch > self._forgotten_through.get(source, -1):
            # Refusals of sends older than the partition's last rewind are moot: the rewind re-reads their ticks.
            if source not in self.refused:  # an outage refuses thousands: one line per partition until its rewind
                log.error("delivery_failed", topic=msg.topic(), source_partition=source, error=str(err))
            self.refused[source] = error

    def _callback(self, source: int | None) -> Callable[[KafkaError | None, Message], None]:
        callback = self._callbacks.get(source)
        if callback is None:
            # A closure over the epoch's counter: one Python call per delivery report, not a partial calling a
            # bound method (callgrind: ~2,800 -> ~1,300 instructions per report), and a refusal still counted.
            outstanding, epoch, refused = self._outstanding, self._epoch, self._refused_in

            def callback(err: KafkaError | None, msg: Message) -> None:
                outstanding[epoch] -= 1
                if err is not None:
                    refused(epoch, source, err, msg)

            self._callbacks[source] = callback
        return callback

    def mark(self) -> int:
        """Close the current epoch and return its number: everything sent so far belongs to it or an earlier one."""
        closed = self._epoch
        self._epoch += 1
        self._callbacks.clear()
        return closed

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop the refusals of ``partitions`` and of everything sent for them so far: they are being re-read."""
        closed = self.mark()
        for partition in partitions:
            self.refused.pop(partition, None)
            self._forgotten_through[partition] = closed

    async def delivered(self, epoch: int, timeout_s: float = 60.0) -> None:
        """Wait until every send of ``epoch`` and earlier epochs is answered; raise if any output was refused.

        Refusals by source partition stay until :meth:`forget`: every wait raises them again.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            self._producer.poll(0)
            pending = sum(n for e, n in self._outstanding.items() if e <= epoch)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise DeliveryFailed(f"{pending} messages still undelivered after {timeout_s}s")
            await asyncio.sleep(DELIVERY_POLL_S)  # librdkafka has no awaitable delivery report: poll until done
        for done in [e for e in self._outstanding if e <= epoch]:
            del self._outstanding[done]
        unsourced = sum(n for e, n in self._refused_unsourced.items() if e <= epoch)
        for done in [e for e in self._refused_unsourced if e <= epoch]:
            del self._refused_unsourced[done]
        if self.refused or unsourced:
            last = next(reversed(self.refused.values()), None)
            raise DeliveryFailed(
                f"outputs refused by the broker: partitions {sorted(self.refused)} (last: {last}), "
                f"{unsourced} without a source partition",
                self.refused,
            )

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        source: int | None = None,
    ) -> bool:
        """Queue one message; False if librdkafka's queue is full (nothing queued: await :meth:`wait_for_room`).

        ``source`` is the ticks partition the message answers; a refusal is charged to it.
        Raises :class:`ProduceRefused` if librdkafka refuses the message itself.
        """
        # Every tick's prediction passes here: no method call to find its callback and no typing.cast (a Python
        # call too). Publishing a prediction, delivery report included, went from 1.67 to 1.40 µs (issue 18).
        callback = self._callbacks.get(source) or self._callback(source)
        # confluent-kafka 2.16's stubs want list[tuple[str, str | bytes | None]], and a list is invariant; an
        # annotated local costs nothing at run time, where typing.cast is a call.
        kafka_headers: Any = headers
        try:
            if partition is None:
                self._producer.produce(topic, value, key, headers=kafka_headers, on_delivery=callback)
            else:
                self._producer.produce(
                    topic, value, key, partition=partition, headers=kafka_headers, on_delivery=callback
                )
        except BufferError:
            return False
        except (KafkaException, ValueError, TypeError) as exc:
            raise ProduceRefused(f"{topic}: {exc}") from exc
        # Counted once librdkafka holds it; its report can only arrive in a later poll on this thread.
        epoch = self._epoch
        self._outstanding[epoch] = self._outstanding.get(epoch, 0) + 1
        self._unpolled += 1
        if self._unpolled >= POLL_EVERY_SENDS:
            self.poll()
        return True

    async def wait_for_room(self, timeout_s: float | None = None) -> None:
        """Wait, yielding to the event loop, until the full queue has drained to :data:`ROOM_FRACTION` of itself."""
        target = int(len(self._producer) * ROOM_FRACTION)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            self._producer.poll(0)
            if len(self._producer) <= target:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the output queue did not drain to {target} messages within {timeout_s}s")
            await asyncio.sleep(DELIVERY_POLL_S)

    async def put(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        source: int | None = None,
    ) -> None:
        """:meth:`send`, awaiting room while the queue is full."""
        while not self.send(topic, key, value, partition=partition, source=source):
            await self.wait_for_room()

    def poll(self) -> None:
        """Serve delivery reports without waiting (cheap; call once per batch of sends)."""
        self._unpolled = 0
        self._producer.poll(0)

    async def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until everything sent so far is delivered; raise if any output was refused."""
        await self.delivered(self.mark(), timeout_s)

    def close(self, timeout_s: float = 30.0) -> int:
        """Deliver what is queued (up to ``timeout_s``), then release librdkafka's connections and threads.

        Returns how many outputs were still undelivered; they are dropped.
        """
        undelivered = int(self._producer.flush(timeout_s))
        # Dropping the only reference destroys the client at once; Producer.close() would wait for the
        # undelivered outputs without a deadline (it hung on a broker that is never reachable).
        del self._producer
        return undelivered
