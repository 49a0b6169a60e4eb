"""Bytewax calling tickcast's handler in a ``stateful_map`` keyed by symbol.

``python -m bytewax.run bench.peers.bytewax_peer:flow [-r RECOVERY_DIR]`` (settings from ``TICKCAST_*``).
The per-key state is a tick count, so with recovery on Bytewax snapshots every key it touched.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource, KafkaSourceMessage
from bytewax.dataflow import Dataflow
from confluent_kafka import OFFSET_BEGINNING

from bench.peers.common import PeerStep

step = PeerStep("bytewax-peer")
settings = step.settings


def predict(count: int | None, message: KafkaSourceMessage) -> tuple[int, KafkaSinkMessage | None]:
    value = step(message.key, message.value, message.topic or "", message.partition or 0, message.offset or 0,
                 message.timestamp[1] if message.timestamp else 0)  # fmt: skip
    return (count or 0) + 1, None if value is None else KafkaSinkMessage(message.key, value)


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
keyed = op.key_on("by-symbol", records, lambda message: (message.key or b"").decode("utf-8", "replace"))
predicted = op.stateful_map("predict", keyed, predict)
out = op.filter_map("drop-dead-letters", predicted, lambda pair: pair[1])
op.output(
    "predictions",
    out,
    KafkaSink(
        [settings.bootstrap_servers], settings.predictions_topic, add_config={"linger.ms": str(settings.linger_ms)}
    ),
)
