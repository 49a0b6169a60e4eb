"""Quix Streams calling tickcast's handler: ``python -m bench.peers.quix_peer`` (settings from ``TICKCAST_*``)."""

from __future__ import annotations

from typing import Any

from quixstreams import Application
from quixstreams.context import message_context
from quixstreams.models import TopicConfig

from bench.peers.common import PeerStep

#: Quix creates its topics itself and needs these two set explicitly on the embedded broker (Tansu reports none).
RETENTION = {"retention.ms": "604800000", "retention.bytes": "-1"}


def main() -> None:
    step = PeerStep("quix-peer")
    settings = step.settings
    app = Application(
        broker_address=settings.bootstrap_servers,
        consumer_group=settings.group_id,
        auto_offset_reset="earliest",
        state_dir=str(settings.data_dir / "quix-state"),
        use_changelog_topics=False,
        consumer_extra_config={"fetch.wait.max.ms": settings.fetch_max_wait_ms},
        producer_extra_config={"linger.ms": settings.linger_ms},
        loglevel="WARNING",
    )
    config = TopicConfig(num_partitions=settings.partitions, replication_factor=1, extra_config=RETENTION)
    ticks = app.topic(settings.ticks_topic, value_deserializer="bytes", key_deserializer="bytes", config=config)
    predictions = app.topic(settings.predictions_topic, value_serializer="bytes", key_serializer="bytes", config=config)

    def predict(value: bytes, key: bytes, timestamp: int, headers: Any) -> bytes | None:
        context = message_context()
        return step(key, value, context.topic, context.partition, context.offset, timestamp)

    frame = app.dataframe(ticks).apply(predict, metadata=True)
    frame.filter(lambda value: value is not None).to_topic(predictions)
    app.run()
    step.write_status()


if __name__ == "__main__":
    main()
