"""The ceiling: a worker's exact per-tick work in a plain confluent-kafka loop, without Faust.

``python -m bench.plain_loop --status-file PATH`` reads the same ``TICKCAST_*`` settings as
``tickcast worker``, joins the same kind of consumer group, and for every record calls
:meth:`TickHandler.handle` (decode, validate, features, model, encode) and produces the outcome
to the predictions or dead-letter topic, as the Faust agent does. Whatever a worker costs beyond
this loop is the price of the framework around the handler.

It writes its assignment and counters to the status file (atomically, about twice a second), which
the bench polls the way it polls a worker's ``/stats``. SIGTERM stops it after a flush.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from tickcast.common.kafka import new_consumer, new_producer
from tickcast.common.logging import configure_logging
from tickcast.common.records import Lineage
from tickcast.predictor.gc_pauses import PROCESS_GC_PAUSES
from tickcast.predictor.gc_tuning import tune_for_throughput
from tickcast.predictor.own_share import OwnShareSplit
from tickcast.predictor.runtime import DeadLettered, Outcome, TickHandler
from tickcast.predictor.settings import PredictorSettings

STATUS_INTERVAL_S = 0.5


def group_consumer(settings: PredictorSettings) -> Consumer:
    """A consumer of the worker's group with the worker's session, heartbeat and fetch wait."""
    return new_consumer(
        settings,
        settings.group_id,
        **{
            "auto.offset.reset": "earliest",
            # Offsets are committed in the background, as Faust does on its commit interval.
            "enable.auto.commit": True,
            "session.timeout.ms": int(settings.session_timeout_s * 1000),
            "heartbeat.interval.ms": int(min(3.0, settings.session_timeout_s / 3) * 1000),
            # Same fetch wait as the worker, so both pay the same broker-side wait.
            "fetch.wait.max.ms": settings.fetch_max_wait_ms,
        },
    )


class PlainLoop:
    def __init__(self, settings: PredictorSettings, status_file: Path, batch: int = 500) -> None:
        self.settings = settings
        self.status_file = status_file
        self.batch = batch
        self.handler = TickHandler(settings)
        self.own_share = OwnShareSplit()  # made on the thread that runs the loop, as it must be
        self.assigned: set[int] = set()
        self.stopping = False
        self.consumer = group_consumer(settings)
        self.producer = new_producer(settings, **{"linger.ms": settings.linger_ms})

    def counts(self) -> dict[str, Any]:
        counters = self.handler.counters
        return {
            "ticks_in": counters.ticks_in,
            "predictions_out": counters.predictions_out,
            "dead_letters": sum(counters.dead_letters.values()),
            "own_latency_buckets": counters.own_latency_seconds.cumulative(),
            "own_share_split": self.own_share.to_stats(),
            "gc_pauses": PROCESS_GC_PAUSES.to_stats(),
        }

    def write_status(self) -> None:
        status = {"pid": os.getpid(), "assigned": sorted(self.assigned), **self.counts()}
        temporary = self.status_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(status))
        os.replace(temporary, self.status_file)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned.update(tp.partition for tp in partitions)
        self.write_status()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned.difference_update(tp.partition for tp in partitions)
        self.write_status()

    def _send(self, topic: str, outcome: Outcome) -> None:
        headers: list[tuple[str, str | bytes | None]] | None = (
            list(outcome.headers) if isinstance(outcome, DeadLettered) else None
        )
        while True:
            try:
                self.producer.produce(topic, key=outcome.key, value=outcome.value, headers=headers)
                return
            except BufferError:
                # Local queue full: serve delivery reports until there is room.
                self.producer.poll(0.05)

    def handle(self, messages: list[Message]) -> None:
        stamp = self.own_share.fetched()  # the worker's own latency runs from here, as in the worker
        fetched_at = stamp.at
        handle, own_latency = self.handler.handle, self.handler.counters.own_latency_seconds.observe
        predictions, dead_letters = self.settings.predictions_topic, self.settings.dlq_topic
        for message in messages:
            if message.error() is not None:
                continue  # partition EOF and transient errors; librdkafka retries by itself
            lineage = Lineage(
                message.topic() or "", message.partition() or 0, message.offset() or 0, message.timestamp()[1]
            )
            outcome = handle(message.key(), message.value(), lineage)
            self._send(dead_letters if isinstance(outcome, DeadLettered) else predictions, outcome)
            own_latency(time.perf_counter() - fetched_at)
        self.own_share.batch_done(stamp)
        self.producer.poll(0)

    def run(self) -> None:
        self.consumer.subscribe([self.settings.ticks_topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.write_status()
        next_status = time.monotonic() + STATUS_INTERVAL_S
        try:
            while not self.stopping:
                # Block for the first record only, then take what is already queued: a batch never
                # waits for more records to arrive, so this adds no latency over per-record handling.
                first = self.consumer.poll(0.1)
                if first is not None:
                    self.handle([first, *self.consumer.consume(num_messages=self.batch - 1, timeout=0)])
                else:
                    self.producer.poll(0)
                if time.monotonic() >= next_status:
                    self.write_status()
                    next_status = time.monotonic() + STATUS_INTERVAL_S
        finally:
            self.producer.flush(15)
            self.write_status()
            self.consumer.close()


def main(argv: list[str] | None = None, loop_class: type[PlainLoop] = PlainLoop, name: str = "plain_loop") -> int:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=__doc__.splitlines()[0])
    parser.add_argument("--status-file", type=Path, required=True, help="where to write assignment and counters")
    parser.add_argument("--batch", type=int, default=500, help="most records taken from the queue at once")
    args = parser.parse_args(argv)
    settings = PredictorSettings()
    configure_logging(name.replace("_", "-"), settings.log_level, settings.log_format)
    loop = loop_class(settings, args.status_file, args.batch)

    def on_signal(signum: int, frame: FrameType | None) -> Any:
        loop.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # The worker's collector settings too, so the ratios to it compare the loops and not the collectors.
    tune_for_throughput(settings.gc_gen0_threshold)
    PROCESS_GC_PAUSES.install()
    loop.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
