"""One tick in, one prediction out: the per-symbol features → models → prediction step, without Kafka.

The worker's batch loop, ``tickcast evaluate`` and the tests all call
:meth:`Forecaster.process`, so what they measure is what production does.

Order per tick (prequential, with delayed labels): every pending forecast this tick labels (per horizon,
see :mod:`tickcast.predictor.delayed_labels`) is scored and learned on the features it was made from, then
each horizon's model forecasts from the features after this tick, and the forecast joins its queue. Every
target is predicted before it is learned, and learned only from what was known when it was predicted.

A gap (no trade of the symbol for more than ``gap_ms``: a halt, the night, a weekend) is not a return: the pending
forecasts are dropped (counted), the short-horizon features start over, and predictions within the longest horizon
after it carry the flag ``after_gap``. So is a jump back by more than ``gap_ms`` (a file replayed again): forecasts
pending for the later time would stall the label queues.

Model selection (:mod:`tickcast.predictor.selection`) runs on the shortest horizon: its challengers forecast as a
forecast joins its queue, and are scored against it at its label. The longer horizons serve the configured model.
"""

from __future__ import annotations

import math
import sys
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import structlog
from river import stats

from tickcast.common.model_events import ModelEvent
from tickcast.common.records import STATE_FRESH, STATE_SNAPSHOT, HorizonForecast, Lineage, Prediction, Tick
from tickcast.predictor.delayed_labels import DEFAULT_CAPACITY, ScoredLabel
from tickcast.predictor.features import MAX_RETURN_BPS, OUTLIER_SIGMAS, SymbolFeatures, clip
from tickcast.predictor.horizon_state import HorizonState, fitted_horizons
from tickcast.predictor.horizons import Horizon, parse_horizons, signature
from tickcast.predictor.model_calls import predict_one
from tickcast.predictor.models import ModelSpec, OnlineRegressor, model_spec, recipes
from tickcast.predictor.selection.champion import ModelSelection, SelectionConfig, warm_up_of
from tickcast.predictor.selection.restored import fit_to_release
from tickcast.predictor.selection.serving import challenge, govern
from tickcast.predictor.shared_settings import share_settings

log = structlog.get_logger("tickcast.predictor")

READY = "READY"
WARMING_UP = "WARMING_UP"
FLAG_OUTLIER = "outlier"
FLAG_TIME_REGRESSED = "time_regressed"
FLAG_AFTER_GAP = "after_gap"
#: The horizons of a Forecaster built without any: the next tick, as before horizons existed.
NEXT_TICK = parse_horizons("1t")


@dataclass(slots=True)
class SymbolState:
    """Everything a worker remembers about one symbol (pickled into its snapshot)."""

    model: OnlineRegressor
    """The shortest horizon's model (``horizons[0].model``), kept here for snapshots older than horizons."""
    features: SymbolFeatures = field(default_factory=SymbolFeatures)
    ticks_learned: int = 0
    """Ticks of this symbol that completed at least one label the models learned (one per tick at most).

    Never goes back, not even when a model is replaced: how trained the serving model is, is its horizon's
    ``learned`` (``labels_learned`` on the wire)."""
    ticks_seen: int = 0
    pending_features: dict[str, float] | None = None  # unused since horizons; kept so older snapshots restore
    pending_forecast: float = 0.0
    abs_error: stats.EWMean = field(default_factory=lambda: stats.EWMean(fading_factor=0.01))  # horizons[0].abs_error
    errors_scored: int = 0
    last_event_time: int | None = None
    last_prediction: Prediction | None = None
    partition: int = -1
    applied_offset: int = -1
    """Offset of the last tick folded into this state; a replayed tick at or before it is skipped."""
    # Lineage (last: a snapshot pickled before these existed restores without them; restore sets them, StateKeeper).
    origin: str = STATE_FRESH
    """STATE_FRESH: learned here since ``since_offset``; STATE_SNAPSHOT: restored from a snapshot."""
    since_offset: int = -1
    """FRESH: offset of the first tick learned from; SNAPSHOT: the snapshot's applied offset."""
    snapshot_generation: int = -1
    # Horizons (issue 15). New fields go last and need a default: see __setstate__.
    horizons: list[HorizonState] = field(default_factory=list)
    """Per horizon, shortest first; empty in a snapshot older than horizons (the forecaster adopts it)."""
    horizon_signature: str = ""
    """The horizons ``horizons`` was built for, with their interval coverage and label capacity (see adopt)."""
    gaps: int = 0
    after_gap_until_ms: int = -1
    """Predictions with an event time before this are flagged ``after_gap``."""
    selection: ModelSelection | None = None
    """Champion and challengers (issue 16) of the shortest horizon; None when no challenger is configured."""

    def restored_from(self, applied_offset: int, generation: int) -> None:
        """Record that this state came from the snapshot at ``applied_offset`` of ``generation`` (lineage).

        Set on restore rather than pickled: a snapshot written before these fields existed restores too.
        """
        self.origin, self.since_offset, self.snapshot_generation = STATE_SNAPSHOT, applied_offset, generation

    def __getstate__(self) -> list[Any]:
        return [getattr(self, name) for name in _STATE_FIELDS]

    def __setstate__(self, values: list[Any]) -> None:
        # An older worker's snapshot has fewer values: the newer fields take their defaults.
        for spec, value in zip(fields(SymbolState), values, strict=False):
            object.__setattr__(self, spec.name, value[:] if type(value) is list else value)  # pickle's has spare room
        for spec in fields(SymbolState)[len(values) :]:
            default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
            object.__setattr__(self, spec.name, default)
        share_settings(self.horizons, self.features)  # the worker's settings, not the snapshot's copies


_STATE_FIELDS = tuple(spec.name for spec in fields(SymbolState))


class Forecaster:
    """Per-symbol state and the step that turns a valid tick into its prediction.

    Without ``horizons`` it forecasts the next tick (``1t``) with no interval, as before horizons existed.

    >>> from tickcast.predictor.models import model_spec
    >>> from tickcast.common.records import Tick, Lineage
    >>> f = Forecaster(model_spec("linear"), worker="doc")
    >>> p = f.process(Tick("SPY", 100.0, 1.0, 0), Lineage("ticks", 0, 0, 0), now_us=0)
    >>> p.status, p.predicted_return_bps, p.ticks_learned
    ('WARMING_UP', 0.0, 0)
    >>> f = Forecaster(model_spec("linear"), "doc", horizons=parse_horizons("1s,10s"), coverage=0.9)
    >>> p = f.process(Tick("SPY", 100.0, 1.0, 5_000), Lineage("ticks", 0, 0, 0), now_us=0)
    >>> [(h.horizon, h.target_time) for h in p.forecasts], p.horizon_ms, p.target_time
    ([('1s', 6000), ('10s', 15000)], 1000, 6000)
    """

    def __init__(
        self,
        spec: ModelSpec,
        worker: str,
        horizons: tuple[Horizon, ...] = NEXT_TICK,
        coverage: float | None = None,
        gap_ms: int | None = None,
        capacity: int = DEFAULT_CAPACITY,
        selection: SelectionConfig | None = None,
    ) -> None:
        self.spec = spec
        self.worker = sys.intern(worker)  # as a restored prediction's copy is (snapshot_pickling): shared
        self.model_version = spec.full_version
        self.horizons = horizons
        self.coverage = coverage or None
        self.gap_ms = gap_ms
        self.capacity = capacity
        self._signature = sys.intern(f"{signature(horizons)} coverage={self.coverage} capacity={capacity} {recipes()}")
        #: How long predictions stay flagged after a gap: the longest time horizon (a tick horizon: that tick).
        self._after_gap_ms = max(h.horizon_ms for h in horizons)
        #: Per horizon, in the order every state's horizons follow (see adopt): what each forecast carries
        #: about it, worked out once rather than per tick (label, horizon_ms, horizon_ticks, time amount,
        #: and whether it is the next tick, whose forecast the outlier band bounds).
        self._horizon_facts = tuple(
            (h.label, h.horizon_ms, h.amount if h.in_ticks else 0, None if h.in_ticks else h.amount, h == NEXT_TICK[0])
            for h in horizons
        )
        self.states: dict[str, SymbolState] = {}
        """Per symbol, in order of last processed tick (oldest first)."""
        self.selection = selection
        self.model_events: list[ModelEvent] = []
        """Decisions made since the caller last took them (it publishes and clears them)."""

    def new_state(self, since_offset: int = -1) -> SymbolState:
        horizons = [HorizonState.fresh(h, self.spec.build(), self.coverage, self.capacity) for h in self.horizons]
        return SymbolState(
            model=horizons[0].model,
            abs_error=horizons[0].abs_error,
            since_offset=since_offset,
            horizons=horizons,
            horizon_signature=self._signature,
        )

    def state(self, symbol: str) -> SymbolState:
        found = self.states.get(symbol)
        if found is None:
            found = self.states[symbol] = self.new_state()
        return found

    def adopt(self, state: SymbolState, tick: Tick, lineage: Lineage, now_us: int) -> None:
        """Fit a restored state to this worker's horizons, settings and recipes (:func:`fitted_horizons`,
        :func:`fit_to_release`): a pre-horizons state's model serves ``1t``; another shortest one resets selection."""
        held = state.horizons or [HorizonState.fresh(NEXT_TICK[0], state.model, self.coverage, self.capacity)]
        if not state.horizons:
            held[0].learned = state.ticks_learned
        if state.selection is not None and held[0].horizon != self.horizons[0]:
            # About the old shortest horizon's target; a promoted champion kept there would serve under another name.
            if state.selection.champion_recipe != self.spec.name:
                held = held[1:]
            state.selection = None
        state.horizons = fitted_horizons(held, self.horizons, self.spec.build, self.coverage, self.capacity)
        if state.selection is not None:
            fitted = fit_to_release(state.selection, state.horizons[0], self.spec, tick, lineage, now_us, self.worker)
            self.model_events += fitted
        state.model, state.abs_error = state.horizons[0].model, state.horizons[0].abs_error
        state.horizon_signature = self._signature

    def process(self, tick: Tick, lineage: Lineage, now_us: int) -> Prediction:
        """Fold one tick into its symbol's state and forecast every horizon; all or nothing.

        Learning is the one step that can raise (a model bug), so it runs before anything else changes: a tick that
        raises leaves the state as it was (and a new symbol unknown), and replaying it later (``tickcast dlq replay``)
        applies it exactly once. The models themselves are the caveat: one that raises after updating part of itself
        keeps that part, and with several horizons, the horizons before it keep what they learned. What follows it
        cannot raise: a model that fails to predict is replaced, as one that forecasts NaN is. Staging on copies
        instead would cost more than the tick itself (a deep copy of the linear pipeline takes ~230 µs, a tick ~40 µs).
        """
        symbol, now = tick.symbol, tick.event_time
        state = self.states.get(symbol)
        is_new = state is None
        if state is None:
            state = self.new_state(since_offset=lineage.offset)
        elif state.horizon_signature != self._signature:
            self.adopt(state, tick, lineage, now_us)
        horizons, shortest = state.horizons, state.horizons[0]
        if shortest.model is not state.model:
            # state.model is the shortest horizon's model: whoever replaces it (a test, model selection) replaces that.
            shortest.model = state.model
        last_time = state.last_event_time
        gap = self.gap_ms is not None and last_time is not None and abs(now - last_time) > self.gap_ms
        assessed = state.features.assess(tick.price)
        is_outlier = assessed.is_outlier
        count = state.ticks_seen + 1
        due: list[tuple[HorizonState, int, list[ScoredLabel]]] = []
        if not gap:
            for horizon in horizons:
                n = horizon.queue.due_count(now, count)
                if n:
                    # A model that raises here has changed nothing of ours (see the docstring for the caveats).
                    due.append((horizon, n, horizon.learn_due(n, assessed.log_price, now, is_outlier)))

        # Committed from here on: nothing below raises.
        if not is_new:
            # Kept in order of last tick, oldest first: eviction takes the least recently seen.
            del self.states[symbol]
        self.states[symbol] = state
        for horizon, n, labels in due:
            horizon.commit(n, labels, is_outlier)
            if horizon is shortest and state.selection is not None and self.selection is not None and not is_outlier:
                self.model_events += govern(state, self.selection, labels, tick, lineage, now_us, self.worker)
        if due and not is_outlier:
            state.ticks_learned += 1
            state.errors_scored = shortest.learned
        flags: list[str] = []
        if gap:
            for horizon in horizons:
                horizon.queue.drop_all()
            state.gaps += 1
            state.after_gap_until_ms = now + self._after_gap_ms
            state.features.reset_after_gap()
            assessed = state.features.assess(tick.price)
        state.partition, state.applied_offset = lineage.partition, lineage.offset
        latest = now
        if last_time is not None and now < last_time:
            flags.append(FLAG_TIME_REGRESSED)
            latest = now if gap else last_time
            if not gap and state.features.last_time_ms is not None and state.features.last_time_ms < last_time:
                # A second tick in a row behind the latest time, within the gap: that time was stamped ahead (a
                # producer's clock), so it is forgotten, or the next gap would be measured from it. The forecasts
                # made after this tick's time would hold each time horizon's labels until event time caught up with
                # them. (One tick behind alone is refused by the queues' spacing and costs nothing; tick horizons
                # don't care.)
                latest = now
                for horizon in horizons:
                    if not horizon.horizon.in_ticks:
                        horizon.queue.drop_made_after(now)
        state.last_event_time = latest
        state.ticks_seen = count
        update = state.features.apply(assessed, now, tick.size)
        if update.is_outlier:
            flags.append(FLAG_OUTLIER)
        if now <= state.after_gap_until_ms:
            flags.append(FLAG_AFTER_GAP)

        price, features, has_features = tick.price, update.features, update.return_bps is not None
        serving = self.spec if state.selection is None else self._serving_spec(state)
        selection = self.selection
        forecasts: list[HorizonForecast] = []
        for horizon, facts in zip(horizons, self._horizon_facts):  # noqa: B905 # one each: adopt() fits them
            label, horizon_ms, horizon_ticks, time_amount, next_tick = facts
            spec = serving if horizon is shortest else self.spec
            ready = has_features and horizon.learned >= spec.warmup_ticks
            if horizon is shortest and selection is not None:
                # Selection's cold start: no model has earned trust on this symbol yet (see selection.warm_up).
                if state.selection is not None:
                    cold = state.selection.cold
                else:  # a new symbol starts cold; a champion that learned before challengers did not (_challenge)
                    cold = bool(warm_up_of(selection)) and not horizon.learned
                ready = ready and not cold
            forecast = self._predict(state, horizon, features, spec, next_tick) if ready else 0.0
            predicted_price = price * math.exp(forecast / 1e4)
            if not math.isfinite(predicted_price):
                # Only a price within a few percent of the float maximum gets here; no forecast beats a finite one.
                forecast, predicted_price = 0.0, price
            interval = horizon.interval
            half_width = interval.half_width_bps if interval is not None else 0.0
            queued = has_features and horizon.queue.offer(
                now, count, assessed.log_price, features, forecast, half_width
            )
            if queued and horizon is shortest and selection is not None:
                challenge(state, selection, self.spec.name, features, horizon)
            # Both records are built positionally, in their fields' order (each line names its field): matching
            # their 42 keywords was ~22k instructions a tick, 7% of the handler's (cachegrind). A value out of
            # place changes the output bytes, which the recorded-stream digests catch.
            forecasts.append(
                HorizonForecast(
                    label,  # horizon
                    horizon_ms,  # horizon_ms
                    horizon_ticks,  # horizon_ticks
                    None if time_amount is None else now + time_amount,  # target_time
                    forecast,  # predicted_return_bps
                    predicted_price,  # predicted_price
                    ready,  # ready
                    horizon.learned,  # labels_learned
                    None if interval is None else forecast - half_width,  # interval_lo_bps
                    None if interval is None else forecast + half_width,  # interval_hi_bps
                    None if interval is None else interval.coverage,  # nominal_coverage
                    None if interval is None else interval.empirical_coverage,  # empirical_coverage
                    horizon.abs_error._ewmean.get() if horizon.learned else None,  # abs_error_ewm_bps (its core)
                )
            )

        first = forecasts[0]
        prediction = Prediction(
            tick.symbol,  # symbol
            now,  # event_time
            price,  # last_price
            first.predicted_return_bps,  # predicted_return_bps
            first.predicted_price,  # predicted_price
            first.horizon_ticks,  # horizon_ticks
            READY if first.ready else WARMING_UP,  # status
            serving.name,  # model_name
            self.model_version if serving is self.spec else serving.full_version,  # model_version
            state.ticks_learned,  # ticks_learned
            lineage.topic,  # source_topic
            lineage.partition,  # source_partition
            lineage.offset,  # source_offset
            lineage.produced_at_ms,  # tick_produced_at
            now_us,  # predicted_at
            self.worker,  # worker
            first.abs_error_ewm_bps,  # abs_error_ewm_bps
            flags,  # flags
            serving.version,  # model_recipe_version
            state.origin,  # state_origin
            state.since_offset,  # state_since_offset
            state.snapshot_generation,  # state_snapshot_generation
            first.horizon_ms,  # horizon_ms
            first.target_time,  # target_time
            first.interval_lo_bps,  # interval_lo_bps
            first.interval_hi_bps,  # interval_hi_bps
            first.nominal_coverage,  # nominal_coverage
            first.empirical_coverage,  # empirical_coverage
            forecasts,  # forecasts
        )
        state.last_prediction = prediction
        return prediction

    def _serving_spec(self, state: SymbolState) -> ModelSpec:
        """The recipe of the shortest horizon's model: the configured one, or the champion selection chose."""
        recipe = self.spec.name if state.selection is None else state.selection.champion_recipe
        return self.spec if recipe == self.spec.name else model_spec(recipe)

    def _predict(
        self, state: SymbolState, horizon: HorizonState, features: dict[str, Any], spec: ModelSpec, next_tick: bool
    ) -> float:
        try:
            raw = predict_one(horizon.model, features)
        except Exception:
            # After learning, a raise here would leave the tick half applied: treat it as a broken model.
            log.exception("model_predict_failed", model=spec.name, horizon=horizon.horizon.label)
            raw = None
        if raw is None or not math.isfinite(raw):
            # The model broke (a NaN weight never unlearns itself): persistence now, and a fresh
            # model that warms up again from the next labels.
            # ticks_learned stays: it counts the symbol's ticks (never backwards, README); the fresh model's own
            # training shows in its labels_learned and status, as after a demotion to a fresh model.
            horizon.model, horizon.learned = spec.build(), 0
            if horizon is state.horizons[0]:
                state.model = horizon.model
            state.origin, state.since_offset, state.snapshot_generation = STATE_FRESH, state.applied_offset, -1
            return 0.0
        # A next-tick forecast beyond the outlier band is never credible; the band is a one-tick move, so a
        # longer horizon is only held within MAX_RETURN_BPS (a guard against a model gone wild).
        limit = MAX_RETURN_BPS
        if next_tick:
            band = OUTLIER_SIGMAS * state.features.scale_bps()
            limit = limit if limit < band else band  # min(band, limit) spelled out, as in clip
        return float(clip(raw, limit))
