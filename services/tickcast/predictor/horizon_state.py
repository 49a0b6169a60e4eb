"""What a symbol keeps per horizon: its model, its pending forecasts, its interval and its error.

Each horizon has a model of its own from the worker's one factory (``TICKCAST_MODEL``): a 1 s return and a
60 s one are different targets. Learning is split in two steps so a tick stays all or nothing
(see :meth:`tickcast.predictor.forecaster.Forecaster.process`): :meth:`HorizonState.learn_due` may raise
(a model bug) and changes nothing of ours; :meth:`HorizonState.commit` cannot raise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from river import stats

from tickcast.predictor.delayed_labels import DEFAULT_CAPACITY, LabelQueue, ScoredLabel
from tickcast.predictor.horizons import Horizon
from tickcast.predictor.intervals import IntervalTracker
from tickcast.predictor.model_calls import learn_one
from tickcast.predictor.models import OnlineRegressor
from tickcast.predictor.next_tick_queue import NEXT_TICK, NextTickQueue, fitted, general


@dataclass(slots=True)
class HorizonState:
    """One symbol's learning state for one horizon.

    >>> from tickcast.predictor.models import build_model
    >>> h = HorizonState.fresh(Horizon(1000), build_model("linear"), coverage=0.9)
    >>> h.queue.offer(0, 1, 0.0, {"r1_bps": 1.0}, 0.0, 0.0)
    True
    >>> labels = h.learn_due(h.queue.due_count(1500, 2), log_price=2e-4, time_ms=1500, label_is_outlier=False)
    >>> h.commit(len(labels), labels, label_is_outlier=False); h.learned, round(h.abs_error.get(), 6)
    (1, 2.0)
    """

    horizon: Horizon
    model: OnlineRegressor
    queue: LabelQueue
    interval: IntervalTracker | None
    learned: int = 0
    abs_error: stats.EWMean = field(default_factory=lambda: stats.EWMean(fading_factor=0.01))
    dropped_outlier: int = 0
    """Labels whose label tick was outlier-flagged: neither learned nor scored."""
    last_delay_ms: int = 0
    """Label delay of the last scored label (event time from forecast to label tick)."""

    @classmethod
    def fresh(
        cls, horizon: Horizon, model: OnlineRegressor, coverage: float | None, capacity: int = DEFAULT_CAPACITY
    ) -> HorizonState:
        """A horizon with nothing learned; ``coverage`` None serves no interval."""
        interval = IntervalTracker(coverage=coverage) if coverage else None
        queue = NextTickQueue(horizon, capacity) if horizon == NEXT_TICK else LabelQueue(horizon, capacity)
        return cls(horizon, model, queue, interval)

    def learn_due(self, count: int, log_price: float, time_ms: int, label_is_outlier: bool) -> list[ScoredLabel]:
        """Label the ``count`` oldest pending forecasts with this tick and learn them (unless it is an outlier).

        May raise (the model's ``learn_one``); nothing of ours has changed then.
        """
        labels = self.queue.labels(count, log_price, time_ms)
        if not label_is_outlier:
            model = self.model
            for label in labels:
                learn_one(model, label.features, label.target_bps)
        return labels

    def commit(self, count: int, labels: list[ScoredLabel], label_is_outlier: bool) -> None:
        """After :meth:`learn_due` succeeded: forget the labelled forecasts and score them (never raises)."""
        self.queue.pop(count)
        if label_is_outlier:
            # An off-market print as label would teach the model and the interval a move that did not happen.
            self.dropped_outlier += count
            return
        self.learned += count
        interval, abs_error = self.interval, self.abs_error._ewmean  # its Rust core, as features.RIVER_CORES says
        for label in labels:
            error = abs(label.target_bps - label.forecast_bps)
            abs_error.update(error)
            if interval is not None:
                interval.update(error, label.half_width_bps, label.weight)
        self.last_delay_ms = labels[-1].delay_ms

    def fit(self, coverage: float | None, capacity: int) -> None:
        """Take a worker's settings, which a restored horizon may have been built under others of: its label capacity,
        and its interval coverage. An interval of another coverage (or none) restarts: its half-width tracked another
        quantile, its empirical coverage counted against another nominal one."""
        self.queue.capacity = capacity
        if self.interval is None or self.interval.coverage != coverage:
            self.interval = IntervalTracker(coverage=coverage) if coverage else None

    def __getstate__(self) -> list[Any]:
        # The dataclass's own state, with a next-tick queue as the LabelQueue it stands for: any worker reads it.
        return [general(self.queue) if spec.name == "queue" else getattr(self, spec.name) for spec in fields(self)]

    def __setstate__(self, values: list[Any]) -> None:
        for spec, value in zip(fields(self), values, strict=False):  # as the dataclass's own
            object.__setattr__(self, spec.name, value)
        self.queue = fitted(self.queue)


def fitted_horizons(
    held: list[HorizonState],
    horizons: tuple[Horizon, ...],
    build: Callable[[], OnlineRegressor],
    coverage: float | None,
    capacity: int,
) -> list[HorizonState]:
    """A restored state's ``held`` horizons fitted to a worker's ``horizons``: those it has are kept, with the worker's
    settings (:meth:`HorizonState.fit`), the others start fresh with a model from ``build``."""
    kept = {h.horizon: h for h in held}
    fitted = [kept.get(h) or HorizonState.fresh(h, build(), coverage, capacity) for h in horizons]
    for horizon in fitted:
        horizon.fit(coverage, capacity)
    return fitted
