"""The one place tickcast reaches into Faust: a configurable consumer fetch wait.

Faust 0.15 hard-codes aiokafka's ``fetch_max_wait_ms=1500``. Apache Kafka answers a
fetch as soon as ``fetch.min.bytes`` is met, so there it mostly costs idle
partitions; brokers that hold a fetch for the full wait (Tansu does) add ~half of
it to every hop's latency. :class:`TunedApp` keeps every Faust behaviour and only
replaces that number with ``fetch_max_wait_ms``. Tested in
``tests/unit/test_faust_tuning.py`` so a Faust upgrade that moves the hook fails loudly.
"""

from __future__ import annotations

from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT


class _TunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this attribute when it builds its fetcher in start(), after construction.
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms  # type: ignore[attr-defined]
        return consumer


class _TunedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _TunedTransport(faust_aiokafka.Transport):
    Consumer = _TunedConsumer


class TunedApp(faust.App):
    """A ``faust.App`` whose worker consumer waits at most ``fetch_max_wait_ms`` for a fetch to fill.

    >>> app = TunedApp("doc-app", broker="kafka://localhost:9092", fetch_max_wait_ms=10)
    >>> type(app.transport).__name__, app.fetch_max_wait_ms
    ('_TunedTransport', 10)
    """

    def __init__(self, *args: Any, fetch_max_wait_ms: int = 1500, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> TransportT:
        return _TunedTransport(self.conf.broker_consumer, self)
