"""One tick in, one prediction out: the per-symbol features → model → prediction step, without Kafka.

The worker's batch loop, ``tickcast evaluate`` and the tests all call
:meth:`Forecaster.process`, so what they measure is what production does.

Order per tick (prequential): the forecast made at the previous tick is scored
against the return this tick realised, the model learns that (features, return)
pair, then it predicts the next return from the features after this tick. Every
target is predicted before it is learned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import structlog
from river import stats

from tickcast.common.model_events import ModelEvent
from tickcast.common.records import STATE_FRESH, STATE_SNAPSHOT, Lineage, Prediction, Tick
from tickcast.predictor.features import MAX_RETURN_BPS, OUTLIER_SIGMAS, SymbolFeatures
from tickcast.predictor.models import ModelSpec, OnlineRegressor, model_spec
from tickcast.predictor.selection.champion import ModelSelection, SelectionConfig
from tickcast.predictor.selection.events import model_event

log = structlog.get_logger("tickcast.predictor")

READY = "READY"
WARMING_UP = "WARMING_UP"
FLAG_OUTLIER = "outlier"
FLAG_TIME_REGRESSED = "time_regressed"


@dataclass(slots=True)
class SymbolState:
    """Everything a worker remembers about one symbol."""

    model: OnlineRegressor
    features: SymbolFeatures = field(default_factory=SymbolFeatures)
    ticks_learned: int = 0
    ticks_seen: int = 0
    pending_features: dict[str, float] | None = None
    pending_forecast: float = 0.0
    abs_error: stats.EWMean = field(default_factory=lambda: stats.EWMean(fading_factor=0.01))
    errors_scored: int = 0
    last_event_time: int | None = None
    last_prediction: Prediction | None = None
    partition: int = -1
    applied_offset: int = -1
    """Offset of the last tick folded into this state; a replayed tick at or before it is skipped."""
    # Lineage of the state (last: a snapshot pickled before these existed restores without them, and
    # restore sets them; see StateKeeper).
    origin: str = STATE_FRESH
    """STATE_FRESH: learned here since ``since_offset``; STATE_SNAPSHOT: restored from a snapshot."""
    since_offset: int = -1
    """FRESH: offset of the first tick learned from; SNAPSHOT: the snapshot's applied offset."""
    snapshot_generation: int = -1
    selection: ModelSelection | None = None
    """Champion and challengers (issue 16); None when no challenger is configured, or in an older snapshot."""

    def restored_from(self, applied_offset: int, generation: int) -> None:
        """Record that this state came from the snapshot at ``applied_offset`` of ``generation`` (lineage).

        Set on restore rather than pickled: a snapshot written before these fields existed restores too.
        """
        self.origin, self.since_offset, self.snapshot_generation = STATE_SNAPSHOT, applied_offset, generation
        if not hasattr(self, "selection"):  # pickled before issue 16: its champion is the configured model
            self.selection = None


class Forecaster:
    """Per-symbol state and the step that turns a valid tick into its prediction.

    >>> from tickcast.predictor.models import model_spec
    >>> from tickcast.common.records import Tick, Lineage
    >>> f = Forecaster(model_spec("linear"), worker="doc")
    >>> p = f.process(Tick("SPY", 100.0, 1.0, 0), Lineage("ticks", 0, 0, 0), now_us=0)
    >>> p.status, p.predicted_return_bps, p.ticks_learned
    ('WARMING_UP', 0.0, 0)
    """

    def __init__(self, spec: ModelSpec, worker: str, selection: SelectionConfig | None = None) -> None:
        self.spec = spec
        self.worker = worker
        self.model_version = spec.full_version
        self.states: dict[str, SymbolState] = {}
        """Per symbol, in order of last processed tick (oldest first)."""
        self.selection = selection
        self.model_events: list[ModelEvent] = []
        """Decisions made since the caller last took them (it publishes and clears them)."""

    def state(self, symbol: str) -> SymbolState:
        found = self.states.get(symbol)
        if found is None:
            found = self.states[symbol] = SymbolState(model=self.spec.build())
        return found

    def process(self, tick: Tick, lineage: Lineage, now_us: int) -> Prediction:
        """Fold one tick into its symbol's state and forecast the next return; all or nothing.

        Learning is the one step that can raise (a model bug), so it runs before anything
        else changes: a tick that raises leaves the state as it was (and a new symbol
        unknown), and replaying it later (``tickcast dlq replay``) applies it exactly once.
        The model itself is the caveat: one that raises after updating part of itself keeps that part.
        What follows it cannot raise: a model that fails to predict is replaced, as one
        that forecasts NaN is. Staging on copies instead would cost more than the tick
        itself (a deep copy of the linear pipeline takes ~230 µs, a tick ~40 µs).
        """
        symbol = tick.symbol
        state = self.states.get(symbol)
        is_new = state is None
        if state is None:
            state = SymbolState(model=self.spec.build(), since_offset=lineage.offset)
        assessed = state.features.assess(tick.price)
        realised, previous = assessed.return_bps, state.pending_features
        learns = realised is not None and previous is not None and not assessed.is_outlier
        if learns and previous is not None and realised is not None:
            # A model that raises here has changed nothing of ours. (A pipeline that fails in its last step
            # may have updated an earlier one; undoing that needs a copy per tick, see above.)
            state.model.learn_one(previous, realised)

        # Committed from here on: nothing below raises.
        if not is_new:
            # Kept in order of last tick, oldest first: eviction takes the least recently seen.
            del self.states[symbol]
        self.states[symbol] = state
        if learns and realised is not None and previous is not None and self.selection is not None:
            self._govern(state, self.selection, previous, realised, tick, lineage, now_us)
        if learns and realised is not None:
            state.abs_error.update(abs(realised - state.pending_forecast))
            state.errors_scored += 1
            state.ticks_learned += 1
        state.partition, state.applied_offset = lineage.partition, lineage.offset
        flags: list[str] = []
        if state.last_event_time is not None and tick.event_time < state.last_event_time:
            flags.append(FLAG_TIME_REGRESSED)
        state.last_event_time = max(tick.event_time, state.last_event_time or tick.event_time)
        state.ticks_seen += 1
        update = state.features.apply(assessed, tick.event_time, tick.size)
        if update.is_outlier:
            flags.append(FLAG_OUTLIER)

        spec = self.spec if state.selection is None else model_spec(state.selection.champion_recipe)
        forecast, status = 0.0, WARMING_UP
        if update.return_bps is not None and state.ticks_learned >= spec.warmup_ticks:
            forecast, status = self._predict(state, update.features, spec), READY
        if state.selection is not None and self.selection is not None and update.return_bps is not None:
            state.selection.forecast(update.features, min(OUTLIER_SIGMAS * state.features.scale_bps(), MAX_RETURN_BPS))
        predicted_price = tick.price * math.exp(forecast / 1e4)
        if not math.isfinite(predicted_price):
            # Only a price within a few percent of the float maximum gets here; no forecast beats a finite one.
            forecast, predicted_price = 0.0, tick.price
        state.pending_features = update.features if update.return_bps is not None else None
        state.pending_forecast = forecast

        prediction = Prediction(
            symbol=tick.symbol,
            event_time=tick.event_time,
            last_price=tick.price,
            predicted_return_bps=forecast,
            predicted_price=predicted_price,
            horizon_ticks=1,
            status=status,
            model_name=spec.name,
            model_version=self.model_version if spec is self.spec else spec.full_version,
            ticks_learned=state.ticks_learned,
            source_topic=lineage.topic,
            source_partition=lineage.partition,
            source_offset=lineage.offset,
            tick_produced_at=lineage.produced_at_ms,
            predicted_at=now_us,
            worker=self.worker,
            abs_error_ewm_bps=state.abs_error.get() if state.errors_scored else None,
            flags=flags,
            model_recipe_version=spec.version,
            state_origin=state.origin,
            state_since_offset=state.since_offset,
            state_snapshot_generation=state.snapshot_generation,
        )
        state.last_prediction = prediction
        return prediction

    def _govern(
        self,
        state: SymbolState,
        config: SelectionConfig,
        features: dict[str, Any],
        label: float,
        tick: Tick,
        lineage: Lineage,
        now_us: int,
    ) -> None:
        """Score the served forecast against the challengers' and let the selection swap the champion."""
        if state.selection is None:
            state.selection = ModelSelection(config)
        state.selection.reconcile(config)
        state.model, decisions = state.selection.learn_one(features, label, state.pending_forecast, state.model)
        for decision in decisions:
            self.model_events.append(
                model_event(decision, tick.symbol, lineage, tick.event_time, now_us, self.worker, config)
            )

    def _predict(self, state: SymbolState, features: dict[str, Any], spec: ModelSpec) -> float:
        try:
            raw = state.model.predict_one(features)
        except Exception:
            # After learning, a raise here would leave the tick half applied: treat it as a broken model.
            log.exception("model_predict_failed", model=spec.name)
            raw = None
        if raw is None or not math.isfinite(raw):
            # The model broke (a NaN weight never unlearns itself): persistence now, and a fresh
            # model that warms up again from the next tick.
            state.model = spec.build()
            state.ticks_learned = 0
            state.origin, state.since_offset, state.snapshot_generation = STATE_FRESH, state.applied_offset, -1
            return 0.0
        # A forecast beyond the outlier band is never credible.
        limit = min(OUTLIER_SIGMAS * state.features.scale_bps(), MAX_RETURN_BPS)
        return float(max(-limit, min(limit, raw)))
