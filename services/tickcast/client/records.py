"""The record a client yields: an immutable prediction with its lineage and its place on the predictions topic."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

from tickcast.common.records import Prediction


@dataclass(frozen=True, slots=True)
class HorizonRecord:
    """One horizon's forecast of a prediction (schema id 7 on), immutable; fields as in the contract."""

    horizon: str
    horizon_ms: int
    horizon_ticks: int
    target_time: int | None
    predicted_return_bps: float
    predicted_price: float
    ready: bool
    labels_learned: int
    interval_lo_bps: float | None = None
    interval_hi_bps: float | None = None
    nominal_coverage: float | None = None
    empirical_coverage: float | None = None
    abs_error_ewm_bps: float | None = None


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One prediction (fields of the Avro contract ``schemas/prediction.avsc``), immutable all the way down.

    ``partition``/``offset`` say where it is on the predictions topic (the same from Kafka or a gateway).

    >>> p = Prediction("SPY", 1, 2.0, 0.5, 2.0001, 1, "READY", "m", "1", 3, "ticks", 0, 9, 1, 2, "w", flags=["x"])
    >>> record = PredictionRecord.of(p, partition=4, offset=17)
    >>> record.flags, record.lineage, record.to_avro() == p.to_avro()
    (('x',), ('ticks', 0, 9), True)
    """

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
    abs_error_ewm_bps: float | None
    flags: tuple[str, ...]
    partition: int
    offset: int
    # Lineage of the model state (schema id 6 on); older records have the contract's defaults.
    model_recipe_version: str = ""
    state_origin: str = "UNKNOWN"
    state_since_offset: int = -1
    state_snapshot_generation: int = -1
    # Horizons and intervals (schema id 7 on): the top-level ones are the shortest horizon's.
    horizon_ms: int = 0
    target_time: int | None = None
    interval_lo_bps: float | None = None
    interval_hi_bps: float | None = None
    nominal_coverage: float | None = None
    empirical_coverage: float | None = None
    forecasts: tuple[HorizonRecord, ...] = ()

    @property
    def lineage(self) -> tuple[str, int, int]:
        """The tick this answers: (source topic, partition, offset), unique per tick."""
        return (self.source_topic, self.source_partition, self.source_offset)

    @classmethod
    def of(cls, prediction: Prediction, partition: int, offset: int) -> PredictionRecord:
        values = prediction.to_avro()
        values["flags"] = tuple(values["flags"])
        values["forecasts"] = _horizons(values.get("forecasts"))
        return cls(**values, partition=partition, offset=offset)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PredictionRecord:
        """From a gateway's JSON (extra keys such as ``age_ms`` are ignored)."""
        values: dict[str, Any] = {name: data.get(name) for name in _FIELDS if name in data or name not in _DEFAULTED}
        values["flags"] = tuple(data.get("flags") or ())
        values["forecasts"] = _horizons(data.get("forecasts"))
        return cls(**values)

    def to_avro(self) -> dict[str, Any]:
        """The prediction as the Avro contract has it (what ``tickcast subscribe`` prints)."""
        values = {name: getattr(self, name) for name in _AVRO_FIELDS}
        values["flags"] = list(self.flags)
        values["forecasts"] = [{f.name: getattr(h, f.name) for f in fields(h)} for h in self.forecasts]
        return values


def _horizons(forecasts: list[Any] | None) -> tuple[HorizonRecord, ...]:
    """Each horizon's forecast, given as decoded dicts (Avro, JSON) or as in-memory records.

    Keys this version does not know are left out, as at the top level: a newer gateway serves the fields a
    newer contract added to a horizon (the Avro reader drops them from Kafka itself).
    """
    return tuple(
        HorizonRecord(
            **(
                {name: f[name] for name in _HORIZON_FIELDS if name in f}
                if isinstance(f, dict)
                else {n.name: getattr(f, n.name) for n in fields(f)}
            )
        )
        for f in forecasts or ()
    )


_HORIZON_FIELDS = tuple(f.name for f in fields(HorizonRecord))
_FIELDS = tuple(f.name for f in fields(PredictionRecord))
_DEFAULTED = frozenset(f.name for f in fields(PredictionRecord) if f.default is not MISSING)
_AVRO_FIELDS = tuple(f.name for f in fields(Prediction))
