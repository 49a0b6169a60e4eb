"""Shapes of the gateway's HTTP answers, for its OpenAPI document (handlers send pre-encoded JSON of these shapes)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HorizonOut(BaseModel):
    """One horizon's forecast (schema id 7 on)."""

    horizon: str = Field(description="As configured: '1s', '500ms', '1m', or '5t' (ticks).")
    horizon_ms: int
    horizon_ticks: int
    target_time: int | None = Field(
        description="event_time + horizon_ms, epoch ms; the forecast is for the first trade at or after it."
    )
    predicted_return_bps: float
    predicted_price: float
    ready: bool
    labels_learned: int
    interval_lo_bps: float | None
    interval_hi_bps: float | None
    nominal_coverage: float | None
    empirical_coverage: float | None
    abs_error_ewm_bps: float | None


class PredictionOut(BaseModel):
    """A prediction (fields of the Avro contract), where it is on the predictions topic, and how old it is."""

    symbol: str
    event_time: int = Field(description="event_time of the tick it answers, epoch ms.")
    last_price: float
    predicted_return_bps: float
    predicted_price: float
    horizon_ticks: int
    status: str = Field(description="WARMING_UP or READY.")
    flags: list[str]
    model_name: str
    model_version: str
    ticks_learned: int
    abs_error_ewm_bps: float | None
    source_topic: str = Field(description="Lineage: topic of the tick.")
    source_partition: int = Field(description="Lineage: partition of the tick.")
    source_offset: int = Field(description="Lineage: offset of the tick.")
    tick_produced_at: int
    predicted_at: int = Field(description="When the worker made it, epoch microseconds.")
    worker: str
    horizon_ms: int = Field(
        0, description="Shortest horizon, ms (0: a tick horizon); the top-level forecast is for it."
    )
    target_time: int | None = Field(None, description="Past it the top-level forecast has expired (epoch ms).")
    interval_lo_bps: float | None = None
    interval_hi_bps: float | None = None
    nominal_coverage: float | None = None
    empirical_coverage: float | None = None
    forecasts: list[HorizonOut] = Field(default_factory=list, description="Every horizon, shortest first.")
    partition: int = Field(description="Partition of the predictions topic it was read from.")
    offset: int = Field(description="Its offset there; with the partition, its SSE event id.")
    age_ms: float = Field(description="Milliseconds since the worker made it, by the gateway's clock.")


class PredictionList(BaseModel):
    predictions: list[PredictionOut]
    unknown: list[str] = Field(description="Requested symbols the gateway holds no prediction for.")


class SymbolAge(BaseModel):
    symbol: str
    age_ms: float
    partition: int
    offset: int


class SymbolList(BaseModel):
    symbols: list[SymbolAge]


class Problem(BaseModel):
    """An error: what was wrong, in one sentence."""

    error: str
    detail: str


class Health(BaseModel):
    status: str = Field(
        description="ok once every partition was read to its end since start; starting before; reader_failed "
        "from a failure of the predictions reader until the restarted reader has read every partition to its end."
    )
    reason: str | None = Field(None, description="Why the status is not ok (None when ok).")
    ready: bool
    symbols: int
    clients: int
    partitions_caught_up: int
    ready_after_s: float | None


class WorkerStatsOut(BaseModel):
    """One worker's /stats, as last polled: its partitions, lag and dead letters, or why it did not answer."""

    url: str
    worker: str | None
    partitions: list[int]
    lag: int | None
    dead_letters: int
    error: str | None
    age_s: float | None = Field(description="Seconds since its last answer.")


class PipelineHealth(BaseModel):
    """What the gateway sees of the pipeline, from the predictions (and dead letters) it reads."""

    predictions_per_s: float = Field(description="Over the last 10 s.")
    latency_ms: float | None = Field(description="Tick produced to prediction made (EWMA), by the workers' clocks.")
    workers: list[str] = Field(description="Workers that made a prediction in the last 10 s.")
    dead_letters: int = Field(description="Dead letters written since this gateway started.")
    symbols: int
    clients: int
    ready: bool
    lag: int | None = Field(
        None, description="Ticks waiting, summed over the workers that answered (TICKCAST_GATEWAY_WORKER_STATS_URLS)."
    )
    worker_dead_letters: int | None = Field(
        None, description="Dead letters the workers that answered wrote since they started."
    )
    workers_reporting: int | None = Field(None, description="Workers whose /stats answered at the last poll.")
    worker_stats: list[WorkerStatsOut] = Field(default_factory=list, description="Each polled worker's own numbers.")
