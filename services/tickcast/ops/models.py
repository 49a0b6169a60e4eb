"""``tickcast models``: which model serves each symbol, how its challengers stand, and how it got there.

Everything is read back from the ``model-events`` topic (the audit trail), every partition from the start
to its end, with no consumer group: the answer is what the workers decided, not what one of them remembers.
A symbol with no event yet is served by the configured model (TICKCAST_MODEL).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.kafka import new_consumer
from tickcast.common.model_events import DRIFT, MODEL_EVENT_SCHEMA_FILE, ChallengerStanding, ModelEvent
from tickcast.common.settings import CommonSettings


@dataclass(slots=True)
class SymbolGovernance:
    """One symbol's story, folded from its events in order."""

    symbol: str
    champion: str | None = None
    """None until the first promotion: the configured model serves."""
    standings: tuple[ChallengerStanding, ...] = ()
    """The challengers' scores in the latest event."""
    changes: list[ModelEvent] = field(default_factory=list)
    drifts: int = 0
    last_drift_at: int | None = None


def fold(events: Iterable[ModelEvent]) -> dict[str, SymbolGovernance]:
    """Each symbol's champion, latest standings and history of changes, from its events in the order read.

    >>> e = lambda kind, to, t: ModelEvent(kind, "SPY", "linear", to, "ticks", 0, t, t, t, "w")
    >>> spy = fold([e("PROMOTION", "pa", 1), e("DRIFT", "pa~fresh", 2)])["SPY"]
    >>> spy.champion, len(spy.changes), spy.drifts
    ('pa', 1, 1)
    """
    symbols: dict[str, SymbolGovernance] = {}
    for event in events:
        story = symbols.setdefault(event.symbol, SymbolGovernance(event.symbol))
        story.standings = event.challengers
        if event.kind == DRIFT:
            story.drifts += 1
            story.last_drift_at = event.event_time
        else:
            story.champion = event.to_model
            story.changes.append(event)
    return symbols


def read_model_events(settings: CommonSettings, timeout_s: float = 30.0) -> list[ModelEvent]:
    """Every record of the model-events topic, in order per partition (a symbol's events share one)."""
    codec = AvroCodec(
        open_schema_store(settings.schema_registry_url, settings),
        f"{settings.model_events_topic}-value",
        load_schema(MODEL_EVENT_SCHEMA_FILE),
    )
    topic = settings.model_events_topic
    consumer = new_consumer(
        settings,
        f"tickcast-models-reader-{uuid.uuid4().hex[:12]}",
        **{"enable.auto.commit": False, "enable.partition.eof": True},
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise LookupError(f"model-events topic {topic!r} does not exist")
        partitions = sorted(metadata.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending, events = set(partitions), []
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition() or 0)
                        continue
                    raise RuntimeError(f"reading {topic!r} failed: {error}")
                value = message.value()
                if value:
                    events.append(ModelEvent.from_avro(codec.decode(value)))
        if pending:
            raise TimeoutError(f"did not reach the end of {topic!r} partitions {sorted(pending)} within {timeout_s}s")
        return events
    finally:
        consumer.close()
