"""Prometheus metrics of one predictor worker, served on its ``/metrics`` page.

The handler's hot path only bumps plain ints and :class:`BucketHistogram` slots in
:class:`TickCounters`; :class:`WorkerMetrics` turns them into metric families when
Prometheus scrapes. ``prometheus_client.Counter``/``Histogram`` would take a lock per
update (about 0.5 µs a counter, 1-2 µs a histogram observation: 4-5 µs a tick against
~1 µs this way), which buys nothing here: the batch loop and the web server share one event
loop. Each worker has its own :class:`~prometheus_client.CollectorRegistry`, so tests can build several
apps in one process. No metric has a per-symbol label: symbols are unbounded.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tickcast.common.errors import Reason
from tickcast.common.model_events import MODEL_EVENT_KINDS
from tickcast.predictor.forecaster import READY, WARMING_UP
from tickcast.predictor.horizon_metrics import HORIZON_METRICS, HasHorizons, horizon_families
from tickcast.predictor.metric_spec import MetricSpec
from tickcast.predictor.snapshots import RefusalReason

#: The text format (0.0.4) every Prometheus version reads.
CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4

#: Handler time of one tick: typically tens to hundreds of µs, a slow model or GC pause up to ~100 ms.
PROCESSING_BUCKETS: Final = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1)
#: Tick produced -> prediction emitted: a few ms when keeping up, seconds when lagging.
#: The worker's own share of latency: its target is p99 <= 2 ms, so 2 ms is a bound; the bounds between 1 and
#: 25 ms are close together because that is where its tail is read (a bucket's bound is the percentile reported).
OWN_LATENCY_BUCKETS: Final = (
    1e-4, 2.5e-4, 5e-4, 1e-3, 1.5e-3, 2e-3, 3e-3, 5e-3, 7.5e-3, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1.0
)  # fmt: skip
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

STATUSES: Final = (READY, WARMING_UP)

TICKS = MetricSpec("tickcast_ticks", "counter", "Tick records handled (predicted or dead-lettered).")
PREDICTIONS = MetricSpec("tickcast_predictions", "counter", "Predictions emitted to the predictions topic.")
DEAD_LETTERS = MetricSpec("tickcast_dead_letters", "counter", "Ticks sent to the dead-letter topic.", ("reason",))
PROCESSING = MetricSpec("tickcast_tick_processing_seconds", "histogram", "Handler time per tick (decode to encode).")
OWN_LATENCY = MetricSpec(
    "tickcast_worker_latency_seconds",
    "histogram",
    "The worker's own share of a tick's latency: its fetch returned to its outcome handed to the producer.",
)
END_TO_END = MetricSpec(
    "tickcast_end_to_end_latency_seconds",
    "histogram",
    "Prediction emitted minus the tick record's Kafka timestamp.",
)
ASSIGNED = MetricSpec("tickcast_assigned_partitions", "gauge", "Partitions of the ticks topic assigned to this worker.")
REBALANCES = MetricSpec("tickcast_rebalances", "counter", "Partition assignments received (one per group rebalance).")
LAG = MetricSpec(
    "tickcast_consumer_lag",
    "gauge",
    "Records not yet processed: highwater minus (last processed offset + 1).",
    ("partition",),
)
SYMBOLS = MetricSpec("tickcast_symbols", "gauge", "Symbols with model state on this worker.")
ABS_ERROR = MetricSpec(
    "tickcast_model_abs_error_bps",
    "gauge",
    "Mean over this worker's scored symbols of their EW mean absolute forecast error, in bps.",
)
STATUS = MetricSpec("tickcast_prediction_status", "counter", "Predictions by status.", ("status",))
OUTLIERS = MetricSpec("tickcast_outliers", "counter", "Ticks flagged as outliers (not learned from).")
NOT_READY = MetricSpec(
    "tickcast_partitions_not_ready",
    "gauge",
    "Assigned partitions whose state is not restored yet (their ticks wait; the restore is retried).",
)
HALTED = MetricSpec(
    "tickcast_partitions_halted",
    "gauge",
    "Assigned partitions this worker stopped: nothing of them is processed or committed until a rebalance "
    "(why: halted_partitions on /stats, and a partition_halted or partition_beyond_configured log line).",
)
RESTORE_FAILURES = MetricSpec("tickcast_restore_failures", "counter", "Failed attempts to restore partition state.")
REFUSED = MetricSpec(
    "tickcast_snapshots_refused",
    "counter",
    "Snapshots not loaded at restore (the symbol starts fresh), by reason.",
    ("reason",),
)
FENCED = MetricSpec(
    "tickcast_checkpoints_fenced",
    "counter",
    "Checkpoints not written because the group moved on without this worker (a stalled, fenced writer).",
)
EVICTED = MetricSpec(
    "tickcast_symbols_evicted",
    "counter",
    "Symbols dropped from memory to stay under TICKCAST_MAX_SYMBOLS (after a final snapshot).",
)
MODEL_EVENTS = MetricSpec("tickcast_model_events", "counter", "Promotions, demotions and drifts decided.", ("kind",))
DRIFTING = MetricSpec(
    "tickcast_symbols_drifting", "gauge", "Symbols whose champion's residuals drifted within their last 1000 labels."
)
INFO = MetricSpec(
    "tickcast_worker_info",
    "gauge",
    "Always 1; labels name the worker and its model.",
    ("worker", "model", "model_version"),
)

METRICS: Final = (
    TICKS,
    PREDICTIONS,
    DEAD_LETTERS,
    PROCESSING,
    OWN_LATENCY,
    END_TO_END,
    ASSIGNED,
    REBALANCES,
    LAG,
    SYMBOLS,
    ABS_ERROR,
    STATUS,
    OUTLIERS,
    NOT_READY,
    HALTED,
    RESTORE_FAILURES,
    REFUSED,
    FENCED,
    EVICTED,
    MODEL_EVENTS,
    DRIFTING,
    INFO,
    *HORIZON_METRICS,
)


def series_names() -> frozenset[str]:
    """Every sample name a worker can export (what alerts and dashboards may query).

    >>> sorted(n for n in series_names() if n.startswith("tickcast_ticks"))
    ['tickcast_ticks_total']
    """
    return frozenset(name for spec in METRICS for name in spec.series)


class BucketHistogram:
    """A lock-free histogram for one thread: ``observe`` is one bisect and two adds.

    >>> h = BucketHistogram((0.1, 1.0))
    >>> for v in (0.05, 0.1, 0.5, 3.0):
    ...     h.observe(v)
    >>> h.cumulative(), h.count, h.total
    ([('0.1', 2), ('1.0', 3), ('+Inf', 4)], 4, 3.65)
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError(f"bucket bounds must be strictly increasing, got {bounds}")
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last slot is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        # bisect_left gives the first bound >= value: Prometheus buckets are "le" (<=).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, cumulative count) pairs as the exposition format wants them."""
        running, out = 0, []
        for bound, n in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


@dataclass(slots=True)
class TickCounters:
    """What a worker has done since it started: served on /stats and, at scrape time, as metrics.

    >>> c = TickCounters()
    >>> c.ticks_in, c.processing_seconds.count, c.last_offsets
    (0, 0, {})
    """

    ticks_in: int = 0
    predictions_out: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    #: A plain dict with every status from zero, not a Counter: a Counter's item assignment, once a tick, took ~70 ns
    #: where a dict's takes ~20 (the forecaster serves no status outside STATUSES).
    statuses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    outliers: int = 0
    processing_seconds: BucketHistogram = field(default_factory=lambda: BucketHistogram(PROCESSING_BUCKETS))
    end_to_end_seconds: BucketHistogram = field(default_factory=lambda: BucketHistogram(LATENCY_BUCKETS))
    own_latency_seconds: BucketHistogram = field(default_factory=lambda: BucketHistogram(OWN_LATENCY_BUCKETS))
    model_events: Counter[str] = field(default_factory=Counter)
    #: partition -> offset of the last tick handled from it (for the lag gauge).
    last_offsets: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StateHealth:
    """How the worker's state keeping is doing (read from ``StateKeeper.health`` at scrape time)."""

    partitions_not_ready: int = 0
    restore_failures: int = 0
    snapshots_refused: Mapping[str, int] = field(default_factory=dict)
    checkpoints_fenced: int = 0
    symbols_evicted: int = 0


class _Statistic(Protocol):
    def get(self) -> float: ...


class ScoredState(HasHorizons, Protocol):
    """The part of a symbol's state the error gauge reads (``forecaster.SymbolState`` has it)."""

    @property
    def abs_error(self) -> _Statistic: ...

    @property
    def errors_scored(self) -> int: ...


def mean_abs_error(states: Iterable[ScoredState]) -> float | None:
    """Mean of the symbols' EW mean absolute errors, over symbols with at least one scored forecast.

    >>> from types import SimpleNamespace as S
    >>> err = lambda v: S(get=lambda: v)
    >>> mean_abs_error([S(abs_error=err(2.0), errors_scored=3), S(abs_error=err(4.0), errors_scored=1),
    ...                 S(abs_error=err(0.0), errors_scored=0)])
    3.0
    >>> mean_abs_error([]) is None
    True
    """
    values = [state.abs_error.get() for state in states if state.errors_scored > 0]
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def partition_lag(highwater: int | None, next_offset: int | None) -> int | None:
    """Records in a partition not processed yet, or None when either end is unknown.

    ``highwater`` is the offset the next record will get; it is refreshed by fetches, so
    it can trail what was just processed: lag is clamped at 0.

    >>> partition_lag(120, 100), partition_lag(100, 101), partition_lag(None, 5), partition_lag(9, None)
    (20, 0, None, None)
    """
    if highwater is None or next_offset is None:
        return None
    return max(0, highwater - next_offset)


class WorkerMetrics(Collector):
    """The ``tickcast_*`` metrics of one worker, read from its counters and state when scraped.

    >>> counters = TickCounters(ticks_in=3, predictions_out=2)
    >>> m = WorkerMetrics("w1", "linear", "1+river", counters, states=dict)
    >>> m.partitions_assigned([0, 3])
    >>> text = m.render().decode()
    >>> "tickcast_ticks_total 3.0" in text, "tickcast_assigned_partitions 2.0" in text
    (True, True)
    """

    def __init__(
        self,
        worker: str,
        model: str,
        model_version: str,
        counters: TickCounters,
        states: Callable[[], Mapping[str, ScoredState]],
    ) -> None:
        self.info = {"worker": worker, "model": model, "model_version": model_version}
        self.counters = counters
        self.states = states
        self.assigned_partitions = 0
        self.rebalances = 0
        #: partition -> lag, refreshed by the worker just before each scrape.
        self.consumer_lag: dict[int, int] = {}
        #: Set by the app once its state keeper exists.
        self.state_health: Callable[[], StateHealth] = StateHealth
        #: partition -> why it was stopped; the app's own dict, read at scrape time.
        self.halted: Mapping[int, str] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def partitions_assigned(self, partitions: Iterable[int]) -> None:
        """A rebalance gave this worker ``partitions`` (of the ticks topic)."""
        owned = set(partitions)
        self.assigned_partitions = len(owned)
        self.rebalances += 1
        # Offsets of partitions that moved away are stale by the time they come back.
        for partition in set(self.counters.last_offsets) - owned:
            del self.counters.last_offsets[partition]
        self.consumer_lag = {p: lag for p, lag in self.consumer_lag.items() if p in owned}

    def render(self) -> bytes:
        """The exposition text (format 0.0.4) of this worker's registry."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        c = self.counters
        yield _counter(TICKS, c.ticks_in)
        yield _counter(PREDICTIONS, c.predictions_out)
        # Every known reason and status is exported from 0, so the first increment shows in rate().
        yield _labelled_counter(DEAD_LETTERS, {**{r.value: 0 for r in Reason}, **c.dead_letters})
        yield _labelled_counter(STATUS, {status: c.statuses.get(status, 0) for status in STATUSES})
        yield _counter(OUTLIERS, c.outliers)
        yield _histogram(PROCESSING, c.processing_seconds)
        yield _histogram(OWN_LATENCY, c.own_latency_seconds)
        yield _histogram(END_TO_END, c.end_to_end_seconds)
        yield GaugeMetricFamily(ASSIGNED.name, ASSIGNED.help, value=self.assigned_partitions)
        yield _counter(REBALANCES, self.rebalances)
        lag = GaugeMetricFamily(LAG.name, LAG.help, labels=LAG.labels)
        for partition, value in sorted(self.consumer_lag.items()):
            lag.add_metric([str(partition)], value)
        yield lag
        states = self.states()
        yield GaugeMetricFamily(SYMBOLS.name, SYMBOLS.help, value=len(states))
        error = GaugeMetricFamily(ABS_ERROR.name, ABS_ERROR.help)
        mean = mean_abs_error(states.values())
        # No sample (rather than NaN) until something is scored, so avg() across workers stays a number.
        if mean is not None:
            error.add_metric([], mean)
        yield error
        yield from horizon_families(states.values())
        yield _labelled_counter(MODEL_EVENTS, {**dict.fromkeys(MODEL_EVENT_KINDS, 0), **c.model_events})
        drifting = sum(
            1 for s in states.values() if (sel := getattr(s, "selection", None)) is not None and sel.drifting
        )
        yield GaugeMetricFamily(DRIFTING.name, DRIFTING.help, value=drifting)
        health = self.state_health()
        yield GaugeMetricFamily(NOT_READY.name, NOT_READY.help, value=health.partitions_not_ready)
        yield GaugeMetricFamily(HALTED.name, HALTED.help, value=len(self.halted))
        yield _counter(RESTORE_FAILURES, health.restore_failures)
        yield _labelled_counter(REFUSED, {**{r.value: 0 for r in RefusalReason}, **health.snapshots_refused})
        yield _counter(FENCED, health.checkpoints_fenced)
        yield _counter(EVICTED, health.symbols_evicted)
        info = GaugeMetricFamily(INFO.name, INFO.help, labels=INFO.labels)
        info.add_metric([self.info[label] for label in INFO.labels], 1)
        yield info


def _counter(spec: MetricSpec, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(spec.name, spec.help, value=value)


def _labelled_counter(spec: MetricSpec, values: Mapping[str, float]) -> CounterMetricFamily:
    family = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    for label, value in values.items():
        family.add_metric([label], value)
    return family


def _histogram(spec: MetricSpec, histogram: BucketHistogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(spec.name, spec.help, buckets=histogram.cumulative(), sum_value=histogram.total)
