"""A naive Faust agent calling tickcast's handler: one event at a time, Faust's own producer.

``python -m bench.peers.faust_peer`` (settings from ``TICKCAST_*``). What the Faust docs show first:
``async for event in stream.events()`` and ``await topic.send(...)``, no batching, no tuning.
View 2 (``BENCH_PEER_VIEW=user``): the user recipe with each symbol's state in a dict in the agent. Faust ships
no Avro codec (raw, json, pickle, binary), so unlike the other peers' view 2 this one does not go through a
Schema Registry serde: it decodes and encodes with the recipe's own fastavro calls on the 5-byte Confluent header.
"""

from __future__ import annotations

import faust

from bench.peers.common import VIEW, PeerStep
from bench.peers.recipe import Symbol
from tickcast.predictor.app import faust_broker_url


def main() -> None:
    step = PeerStep("faust-peer")
    settings = step.settings
    datadir = settings.data_dir / "faust-peer"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.group_id}",
        broker=faust_broker_url(settings.bootstrap_servers),
        datadir=str(datadir),
        store="memory://",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
        broker_session_timeout=settings.session_timeout_s,
        producer_linger=settings.linger_ms / 1000.0,
    )
    ticks = app.topic(
        settings.ticks_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    predictions = app.topic(
        settings.predictions_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )

    symbols: dict[str, Symbol] = {}

    @app.agent(ticks)
    async def predict(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            if VIEW == "user":
                name = message.key.decode()
                topic, partition, offset = message.topic, message.partition, message.offset
                symbols[name], value = step.user_step_bytes(
                    symbols.get(name), message.value, topic, partition, offset, int(message.timestamp * 1000)
                )
                await predictions.send(key=message.key, value=value)
                continue
            output = step(message.key, message.value, message.topic, message.partition, message.offset,
                          int(message.timestamp * 1000))  # fmt: skip
            if output is not None:
                await predictions.send(key=message.key, value=output)

    worker = faust.Worker(app, loglevel="WARNING", quiet=True, override_logging=False, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
