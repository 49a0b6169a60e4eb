"""In-memory shape of the model-events contract (``schemas/model-event.avsc``): the audit trail of governance.

Written by the predictor when a symbol's champion changes or its residuals drift; read by
``tickcast models``. Rare (a few per symbol per day), so a frozen dataclass costs nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODEL_EVENT_SCHEMA_FILE = "model-event.avsc"
PROMOTION, DEMOTION, DRIFT = "PROMOTION", "DEMOTION", "DRIFT"
MODEL_EVENT_KINDS = (PROMOTION, DEMOTION, DRIFT)


@dataclass(frozen=True, slots=True)
class ChallengerStanding:
    """One challenger against the champion when an event happened."""

    model: str
    samples: int
    champion_mse: float
    challenger_mse: float
    statistic: float


@dataclass(frozen=True, slots=True)
class ModelEvent:
    """One promotion, demotion or drift detection with its evidence and lineage.

    >>> event = ModelEvent("PROMOTION", "SPY", "linear", "pa", "ticks", 0, 42, 1_000, 2_000_000, "w1", samples=300)
    >>> ModelEvent.from_avro(event.to_avro()) == event
    True
    """

    kind: str
    symbol: str
    from_model: str
    to_model: str
    source_topic: str
    source_partition: int
    source_offset: int
    event_time: int
    emitted_at: int
    worker: str
    samples: int = 0
    statistic: float = 0.0
    p_value: float = 1.0
    champion_mse: float = 0.0
    challenger_mse: float = 0.0
    skill_margin: float = 0.0
    level: float = 0.0
    min_skill_margin: float = 0.0
    labels_since_change: int = 0
    challengers: tuple[ChallengerStanding, ...] = field(default_factory=tuple)

    def to_avro(self) -> dict[str, Any]:
        record = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "challengers"}
        record["challengers"] = [
            {
                "model": c.model,
                "samples": c.samples,
                "champion_mse": c.champion_mse,
                "challenger_mse": c.challenger_mse,
                "statistic": c.statistic,
            }
            for c in self.challengers
        ]
        return record

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> ModelEvent:
        values = {name: record[name] for name in cls.__dataclass_fields__ if name in record and name != "challengers"}
        standings = tuple(ChallengerStanding(**c) for c in record.get("challengers", []))
        return cls(**values, challengers=standings)
