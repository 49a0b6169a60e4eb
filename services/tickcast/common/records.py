"""In-memory shapes of the two contracts (``schemas/tick.avsc``, ``schemas/prediction.avsc``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Tick:
    """One trade. ``event_time`` is epoch milliseconds, UTC.

    >>> Tick("SPY", 431.2, 100.0, 1_381_152_600_000).to_avro()["symbol"]
    'SPY'
    """

    symbol: str
    price: float
    size: float
    event_time: int
    venue: str | None = None
    condition: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> Tick:
        return cls(
            record["symbol"],
            record["price"],
            record["size"],
            record["event_time"],
            record.get("venue"),
            record.get("condition"),
        )


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a tick came from: (topic, partition, offset) is unique, plus the record's Kafka timestamp."""

    topic: str
    partition: int
    offset: int
    produced_at_ms: int


@dataclass(frozen=True, slots=True)
class Prediction:
    """The forecast made when one tick arrived; field meanings are documented in the Avro contract."""

    symbol: str
    event_time: int
    last_price: float
    predicted_return_bps: float
    predicted_price: float
    horizon_ticks: int
    status: str
    model_name: str
    model_version: str
    ticks_learned: int
    source_topic: str
    source_partition: int
    source_offset: int
    tick_produced_at: int
    predicted_at: int
    worker: str
    abs_error_ewm_bps: float | None = None
    flags: list[str] = field(default_factory=list)

    def to_avro(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> Prediction:
        return cls(**record)
