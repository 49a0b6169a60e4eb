"""Bytewax calling tickcast's handler in a ``stateful_map`` keyed by symbol.

``python -m bytewax.run bench.peers.bytewax_peer:flow [-r RECOVERY_DIR]`` (settings from ``TICKCAST_*``).
View 1: the per-key state is a tick count and tickcast's handler keeps its own, so with recovery on
Bytewax snapshots every key it touched. View 2 (``BENCH_PEER_VIEW=user``): what Bytewax's Kafka docs show for
Confluent-framed Avro: ``bytewax.connectors.kafka.operators`` in and out, values read and written by
confluent-kafka's Schema Registry ``AvroDeserializer``/``AvroSerializer``, and the user recipe's symbol (features
and River model) as the ``stateful_map`` state, which recovery snapshots (pickles).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import bytewax.connectors.kafka.operators as kop
import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource, KafkaSourceMessage
from bytewax.dataflow import Dataflow
from confluent_kafka import OFFSET_BEGINNING
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer

from bench.peers.common import REGISTRY_URL, VIEW, PeerStep
from bench.peers.recipe import Symbol

step = PeerStep("bytewax-peer")
settings = step.settings


def predict(count: int | None, message: KafkaSourceMessage) -> tuple[int, KafkaSinkMessage | None]:
    value = step(message.key, message.value, message.topic or "", message.partition or 0, message.offset or 0,
                 message.timestamp[1] if message.timestamp else 0)  # fmt: skip
    return (count or 0) + 1, None if value is None else KafkaSinkMessage(message.key, value)


def handler_flow() -> Dataflow:
    """View 1: raw bytes in and out, tickcast's handler in between."""
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
    mapper: Callable[[Any, KafkaSourceMessage], tuple[Any, KafkaSinkMessage | None]] = predict
    predicted = op.stateful_map("predict", keyed, mapper)
    out = op.filter_map("drop-dead-letters", predicted, lambda pair: pair[1])
    op.output(
        "predictions",
        out,
        KafkaSink(
            [settings.bootstrap_servers], settings.predictions_topic, add_config={"linger.ms": str(settings.linger_ms)}
        ),
    )
    return flow


def predict_in_state(state: Symbol | None, message: KafkaSourceMessage) -> tuple[Symbol, KafkaSinkMessage]:
    timestamp = message.timestamp[1] if message.timestamp else 0
    topic, partition, offset = message.topic or "", message.partition or 0, message.offset or 0
    symbol, record = step.user_step(state, message.value, topic, partition, offset, timestamp)
    # The serializer names the subject after the message's topic: a sink message has none unless given one.
    return symbol, KafkaSinkMessage(message.key, record, topic=settings.predictions_topic)


def user_flow() -> Dataflow:
    """View 2: Bytewax's Kafka operators with confluent-kafka's Schema Registry Avro serde."""
    registry = SchemaRegistryClient({"url": REGISTRY_URL})
    flow = Dataflow("tickcast-peer")
    brokers = [settings.bootstrap_servers]
    consumed = kop.input(
        "ticks",
        flow,
        brokers=brokers,
        topics=[settings.ticks_topic],
        starting_offset=OFFSET_BEGINNING,
        add_config={"fetch.wait.max.ms": str(settings.fetch_max_wait_ms)},
        batch_size=500,
    )
    # A Kafka or decoding error stops the flow: a bench backlog has none, and a drain must answer every tick.
    op.raises("kafka-errors", consumed.errs)
    decoded = kop.deserialize_value("decode", consumed.oks, AvroDeserializer(registry))
    op.raises("decode-errors", decoded.errs)
    keyed = op.key_on("by-symbol", decoded.oks, lambda message: (message.key or b"").decode("utf-8", "replace"))
    predicted = op.stateful_map("predict", keyed, predict_in_state)
    records = op.map("unkey", predicted, lambda pair: pair[1])
    encoded = kop.serialize_value(
        "encode", records, AvroSerializer(registry, json.dumps(step.recipe.prediction_contract))
    )
    kop.output(
        "predictions",
        encoded,
        brokers=brokers,
        topic=settings.predictions_topic,
        add_config={"linger.ms": str(settings.linger_ms)},
    )
    return flow


flow = handler_flow() if VIEW == "handler" else user_flow()
