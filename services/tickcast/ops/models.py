"""``tickcast models``: which model serves each symbol, how its challengers stand, and how it got there.

Everything is read back from the ``model-events`` topic (the audit trail), every partition from the start
to its end, with no consumer group: the answer is what the workers decided, not what one of them remembers.
A symbol with no event yet is served by the configured model (TICKCAST_MODEL).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.errors import Rejected
from tickcast.common.model_events import DRIFT, MODEL_EVENT_SCHEMA_FILE, ChallengerStanding, ModelEvent
from tickcast.common.settings import CommonSettings
from tickcast.ops.topic_reader import read_whole_topic

log = structlog.get_logger("tickcast.models")


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
    """Every record of the model-events topic, in order per partition (a symbol's events share one).

    A record that is not a model event (another writer on the topic) is logged with its position and skipped:
    it must not hide the audit trail around it.
    """
    codec = AvroCodec(
        open_schema_store(settings.schema_registry_url, settings),
        f"{settings.model_events_topic}-value",
        load_schema(MODEL_EVENT_SCHEMA_FILE),
    )
    events = []
    for message in read_whole_topic(settings, settings.model_events_topic, "model-events topic", timeout_s):
        if not (value := message.value()):
            continue
        try:
            events.append(ModelEvent.from_avro(codec.decode(value)))
        except Rejected as exc:
            log.warning(
                "model_event_undecodable",
                topic=settings.model_events_topic,
                partition=message.partition(),
                offset=message.offset(),
                error=str(exc),
            )
    return events
