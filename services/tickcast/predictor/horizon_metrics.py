"""Per-horizon gauges of a worker (label delay, pending labels, error, interval coverage, dropped labels).

Read from the symbols' states when Prometheus scrapes, so the per-tick path pays nothing for them. The label
is the horizon (a handful of configured values), never the symbol. Sums and means are over the symbols this
worker holds now, so they move with rebalances and eviction: they are gauges, not counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final, Protocol

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from tickcast.predictor.horizon_state import HorizonState
from tickcast.predictor.metric_spec import MetricSpec

PENDING = MetricSpec(
    "tickcast_horizon_pending_labels", "gauge", "Forecasts waiting for their label, summed over symbols.", ("horizon",)
)
DELAY = MetricSpec(
    "tickcast_horizon_label_delay_seconds",
    "gauge",
    "Mean over symbols of the event time from a forecast to its label tick (last scored label).",
    ("horizon",),
)
ERROR = MetricSpec(
    "tickcast_horizon_abs_error_bps", "gauge", "Mean over scored symbols of their EW mean absolute error, bps.",
    ("horizon",),
)  # fmt: skip
COVERAGE = MetricSpec(
    "tickcast_horizon_interval_coverage",
    "gauge",
    "Mean over scored symbols of the share of forecasts whose label fell in the interval served with them.",
    ("horizon",),
)
DROPPED = MetricSpec(
    "tickcast_horizon_labels_dropped",
    "gauge",
    "Forecasts not learned, summed over symbols held: 'gap' (pending when a gap opened, or made after a time "
    "stamped ahead), 'outlier' (label tick flagged), 'unsampled' (served between two enqueued ones, see "
    "TICKCAST_LABEL_CAPACITY).",
    ("horizon", "reason"),
)
HORIZON_METRICS: Final = (PENDING, DELAY, ERROR, COVERAGE, DROPPED)


class HasHorizons(Protocol):
    """What these gauges read of a symbol's state (``forecaster.SymbolState`` has it)."""

    @property
    def horizons(self) -> Sequence[HorizonState]: ...


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def horizon_families(states: Iterable[HasHorizons]) -> Iterator[Metric]:
    """The per-horizon families over ``states``; a horizon with nothing scored has no error sample.

    >>> from tickcast.predictor.forecaster import Forecaster
    >>> from tickcast.predictor.models import model_spec
    >>> from tickcast.predictor.horizons import parse_horizons
    >>> f = Forecaster(model_spec("persistence"), "w", horizons=parse_horizons("1s"), coverage=0.9)
    >>> _ = f.state("SPY")
    >>> [m.name for m in horizon_families(f.states.values())][:2]
    ['tickcast_horizon_pending_labels', 'tickcast_horizon_label_delay_seconds']
    """
    pending: dict[str, int] = {}
    delays: dict[str, list[float]] = {}
    errors: dict[str, list[float]] = {}
    coverage: dict[str, list[float]] = {}
    dropped: dict[tuple[str, str], int] = {}
    for state in states:
        for horizon in state.horizons:
            label = horizon.horizon.label
            queue = horizon.queue
            pending[label] = pending.get(label, 0) + queue.depth
            for reason, count in (("gap", queue.dropped_gap), ("outlier", horizon.dropped_outlier),
                                  ("unsampled", queue.skipped)):  # fmt: skip
                dropped[label, reason] = dropped.get((label, reason), 0) + count
            if horizon.learned:
                delays.setdefault(label, []).append(horizon.last_delay_ms / 1000.0)
                errors.setdefault(label, []).append(horizon.abs_error.get())
            share = horizon.interval.empirical_coverage if horizon.interval is not None else None
            if share is not None:
                coverage.setdefault(label, []).append(share)
    families = {spec: GaugeMetricFamily(spec.name, spec.help, labels=spec.labels) for spec in HORIZON_METRICS}
    for label, count in pending.items():
        families[PENDING].add_metric([label], count)
    for spec, values in ((DELAY, delays), (ERROR, errors), (COVERAGE, coverage)):
        for label, samples in values.items():
            mean = _mean(samples)
            if mean is not None:
                families[spec].add_metric([label], mean)
    for (label, reason), count in dropped.items():
        families[DROPPED].add_metric([label, reason], count)
    yield from families.values()
