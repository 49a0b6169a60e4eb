"""Bytewax calling tickcast's handler in a ``stateful_map`` keyed by symbol.

``python -m bytewax.run bench.peers.bytewax_peer:flow [-r RECOVERY_DIR]`` (settings from ``TICKCAST_*``).
View 1: the per-key state is a tick count and tickcast's handler keeps its own, so with recovery on
Bytewax snapshots every key it touched. View 2 (``BENCH_PEER_VIEW=user``): the per-key state is the
user recipe's symbol (features and River model), which recovery snapshots (pickles).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource, KafkaSourceMessage
from bytewax.dataflow import Dataflow
from confluent_kafka import OFFSET_BEGINNING

from bench.peers.common import VIEW, PeerStep
from bench.peers.recipe import Symbol

step = PeerStep("bytewax-peer")
settings = step.settings


def predict(count: int | None, message: KafkaSourceMessage) -> tuple[int, KafkaSinkMessage | None]:
    value = step(message.key, message.value, message.topic or "", message.partition or 0, message.offset or 0,
                 message.timestamp[1] if message.timestamp else 0)  # fmt: skip
    return (count or 0) + 1, None if value is None else KafkaSinkMessage(message.key, value)


def predict_in_state(state: Symbol | None, message: KafkaSourceMessage) -> tuple[Symbol, KafkaSinkMessage]:
    timestamp = message.timestamp[1] if message.timestamp else 0
    topic, partition, offset = message.topic or "", message.partition or 0, message.offset or 0
    symbol, value = step.user_step(state, message.value or b"", topic, partition, offset, timestamp)
    return symbol, KafkaSinkMessage(message.key, value)


flow = Dataflow("tickcast-peer")
records = op.input(
    "ticks",
    flow,
    KafkaSource(
        [settings.bootstrap_servers],
        [settings.ticks_topic],
        tail=True,
        starting_offset=OFFSET_BEGINNING,
        add_config={"fetch.wait.max.ms": str(settings.fetch_max_wait_ms)},
        batch_size=500,
    ),
)
# The source raises on a Kafka error (its default, raise_on_errors), so no KafkaError item reaches the stream.
messages = cast("op.Stream[KafkaSourceMessage]", records)
keyed = op.key_on("by-symbol", messages, lambda message: (message.key or b"").decode("utf-8", "replace"))
mapper: Callable[[Any, KafkaSourceMessage], tuple[Any, KafkaSinkMessage | None]] = (
    predict if VIEW == "handler" else predict_in_state
)
predicted = op.stateful_map("predict", keyed, mapper)
out = op.filter_map("drop-dead-letters", predicted, lambda pair: pair[1])
op.output(
    "predictions",
    out,
    KafkaSink(
        [settings.bootstrap_servers], settings.predictions_topic, add_config={"linger.ms": str(settings.linger_ms)}
    ),
)
