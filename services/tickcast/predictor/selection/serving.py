"""Model selection within a symbol's tick: challengers forecast beside a served forecast, and are scored at its label.

The forecaster calls :func:`challenge` when a forecast of the shortest horizon joins its queue, and :func:`govern`
with the labels that horizon learned on a tick; both leave the symbol's state as the next tick expects it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from tickcast.predictor.features import MAX_RETURN_BPS, OUTLIER_SIGMAS
from tickcast.predictor.next_tick_queue import NEXT_TICK
from tickcast.predictor.selection.champion import ModelSelection, SelectionConfig
from tickcast.predictor.selection.events import model_event

if TYPE_CHECKING:
    from tickcast.common.model_events import ModelEvent
    from tickcast.common.records import Lineage, Tick
    from tickcast.predictor.delayed_labels import ScoredLabel
    from tickcast.predictor.features import SymbolFeatures
    from tickcast.predictor.horizon_state import HorizonState
    from tickcast.predictor.models import OnlineRegressor


class SymbolState(Protocol):
    """What selection reads and changes of a symbol's state (the forecaster's ``SymbolState``)."""

    model: OnlineRegressor
    features: SymbolFeatures
    horizons: list[HorizonState]
    selection: ModelSelection | None


def challenge(
    state: SymbolState, config: SelectionConfig, champion: str, features: dict[str, Any], horizon: HorizonState
) -> None:
    """The challengers' forecasts from the ``features`` just served, kept with that forecast until its label."""
    if state.selection is None:
        state.selection = ModelSelection(config, champion=champion)
        if horizon.learned:
            # Challengers newly configured for a symbol whose champion has learned (a restart that adds them):
            # the champion has served, so no cold start; only the challengers are new, judged by the rule.
            state.selection.warm_up = None
    state.selection.reconcile(config)
    limit = MAX_RETURN_BPS
    if horizon.horizon == NEXT_TICK:
        limit = min(OUTLIER_SIGMAS * state.features.scale_bps(), limit)
    state.selection.forecast(features, limit, horizon.model)
    horizon.queue.attach_challengers(state.selection.pending)
    state.selection.pending = None


def govern(
    state: SymbolState,
    config: SelectionConfig,
    labels: list[ScoredLabel],
    tick: Tick,
    lineage: Lineage,
    now_us: int,
    worker: str,
) -> list[ModelEvent]:
    """Score each served forecast against the challengers' of the same tick and let selection swap the champion.

    Returns the audit records of what selection decided (promotions, demotions, drifts), in order.
    """
    selection = state.selection
    events: list[ModelEvent] = []
    if selection is None:
        return events
    selection.reconcile(config)
    model = state.horizons[0].model
    for label in labels:
        selection.pending = label.challengers
        model, decisions = selection.learn_one(label.features, label.target_bps, label.forecast_bps, model)
        events.extend(model_event(d, tick.symbol, lineage, tick.event_time, now_us, worker, config) for d in decisions)
    state.horizons[0].model = state.model = model
    return events
