"""Quix Streams: ``python -m bench.peers.quix_peer [dict|state]`` (settings from ``TICKCAST_*``).

View 1 calls tickcast's handler on raw bytes. View 2 (``BENCH_PEER_VIEW=user``) reads and writes with Quix's own
``AvroDeserializer``/``AvroSerializer`` given a ``SchemaRegistryClientConfig`` (Confluent-framed Avro), and runs
the user recipe with each symbol's state in a plain dict (``dict``) or in Quix's own State (``state``: RocksDB
with a changelog topic, values pickled through ``RocksDBOptions``, as River models are not JSON).
"""

from __future__ import annotations

import pickle  # nosec B403 # the peer's own RocksDB state, written and read by this process only
import sys
from typing import Any

from quixstreams import Application, State
from quixstreams.context import message_context
from quixstreams.models import TopicConfig
from quixstreams.models.serializers.avro import AvroDeserializer, AvroSerializer
from quixstreams.models.serializers.schema_registry import SchemaRegistryClientConfig
from quixstreams.state.rocksdb import RocksDBOptions

from bench.core import TOPIC_CONFIG
from bench.peers.common import REGISTRY_URL, VIEW, PeerStep
from bench.peers.recipe import Symbol


def main() -> None:
    step = PeerStep("quix-peer")
    settings = step.settings
    in_state = VIEW == "user" and sys.argv[1:] == ["state"]
    app = Application(
        broker_address=settings.bootstrap_servers,
        consumer_group=settings.group_id,
        auto_offset_reset="earliest",
        state_dir=str(settings.data_dir / "quix-state"),
        use_changelog_topics=in_state,
        rocksdb_options=RocksDBOptions(dumps=pickle.dumps, loads=pickle.loads),
        consumer_extra_config={"fetch.wait.max.ms": settings.fetch_max_wait_ms},
        producer_extra_config={"linger.ms": settings.linger_ms},
        loglevel="WARNING",
    )
    config = TopicConfig(num_partitions=settings.partitions, replication_factor=1, extra_config=TOPIC_CONFIG)
    if VIEW == "handler":
        ticks = app.topic(settings.ticks_topic, value_deserializer="bytes", key_deserializer="bytes", config=config)
        predictions = app.topic(
            settings.predictions_topic, value_serializer="bytes", key_serializer="bytes", config=config
        )
    else:
        registry = SchemaRegistryClientConfig(url=REGISTRY_URL)
        ticks = app.topic(
            settings.ticks_topic,
            value_deserializer=AvroDeserializer(schema_registry_client_config=registry),
            key_deserializer="bytes",
            config=config,
        )
        predictions = app.topic(
            settings.predictions_topic,
            value_serializer=AvroSerializer(step.recipe.prediction_contract, schema_registry_client_config=registry),
            key_serializer="bytes",
            config=config,
        )

    def predict(value: bytes, key: bytes, timestamp: int, headers: Any) -> bytes | None:
        context = message_context()
        return step(key, value, context.topic, context.partition, context.offset, timestamp)

    symbols: dict[str, Symbol] = {}

    def predict_from_dict(value: dict[str, Any], key: bytes, timestamp: int, headers: Any) -> dict[str, Any]:
        context = message_context()
        symbol = key.decode()
        symbols[symbol], out = step.user_step(
            symbols.get(symbol), value, context.topic, context.partition, context.offset, timestamp
        )
        return out

    def predict_from_state(
        value: dict[str, Any], key: bytes, timestamp: int, headers: Any, state: State
    ) -> dict[str, Any]:
        context = message_context()
        symbol, out = step.user_step(
            state.get("symbol"), value, context.topic, context.partition, context.offset, timestamp
        )
        state.set("symbol", symbol)
        return out

    frame = app.dataframe(ticks)
    if VIEW == "handler":
        frame = frame.apply(predict, metadata=True)
    elif in_state:
        frame = frame.apply(predict_from_state, metadata=True, stateful=True)
    else:
        frame = frame.apply(predict_from_dict, metadata=True)
    frame.filter(lambda value: value is not None).to_topic(predictions)
    app.run()
    step.write_status()


if __name__ == "__main__":
    main()
