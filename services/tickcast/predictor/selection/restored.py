"""A restored selection fitted to this release's registry of recipes (:mod:`tickcast.predictor.models`).

A snapshot keeps the champion and challengers its writer held, and the release restoring it may no longer
have one of their recipes. Such a model cannot serve or compete here: serving it would name a recipe this
worker cannot build (and looking that name up after learning would fail every tick of the symbol), and a
challenger of it could be promoted into the same place. So when a worker adopts a restored state, each model
of such a recipe is dropped, once: a challenger simply (a configured one starts again fresh), a champion by
falling back to the configured model, the challenger of its recipe if the selection holds one (it learned
every label), else a fresh one that warms up again. The fallback is a DEMOTION on ``model-events`` with no
evidence (no samples, level 0: neither the rule nor the warm-up decided it); every drop is logged
(``restored_model_dropped``) with the symbol, its partition and the reason.
"""

from __future__ import annotations

import structlog

from tickcast.common.model_events import ModelEvent
from tickcast.common.records import Lineage, Tick
from tickcast.predictor.horizon_state import HorizonState
from tickcast.predictor.models import MODELS, ModelSpec
from tickcast.predictor.selection.champion import DEMOTION, Decision, ModelSelection, recipe_of
from tickcast.predictor.selection.events import model_event

log = structlog.get_logger("tickcast.predictor")


def recipes() -> str:
    """This release's recipes, as a forecaster's state signature names them: a state restored from a release with
    others is adopted once (and its selection fitted by :func:`fit_to_release`).

    >>> recipes()
    'recipes=linear,pa,persistence,ew-mean,mean-reversion'
    """
    return "recipes=" + ",".join(MODELS)


def stale_recipes(selection: ModelSelection) -> dict[str, str]:
    """Each recipe the selection holds a model of that this release cannot stand behind, with the reason.

    >>> from tickcast.predictor.selection.champion import SelectionConfig
    >>> selection = ModelSelection(SelectionConfig("linear", ("pa",)), champion="gone")
    >>> stale_recipes(selection)
    {'gone': "not in this release's registry"}
    """
    held = sorted({selection.champion_recipe, *(recipe_of(slot) for slot in selection.challengers)})
    return {recipe: "not in this release's registry" for recipe in held if recipe not in MODELS}


def fit_to_release(
    selection: ModelSelection, shortest: HorizonState, spec: ModelSpec, tick: Tick, lineage: Lineage, now_us: int,
    worker: str,
) -> list[ModelEvent]:  # fmt: skip
    """Drop the models of stale recipes (see the module); ``shortest`` serves the configured ``spec`` if the
    champion was one. Returns the fallback's audit record, if any, made at the tick being processed."""
    stale = stale_recipes(selection)
    if not stale:
        return []
    for recipe, reason in stale.items():
        log.warning("restored_model_dropped", symbol=tick.symbol, partition=lineage.partition, model=recipe,
                    champion=recipe == selection.champion_recipe, reason=reason)  # fmt: skip
    dropped = [slot for slot in (selection.champion, *selection.challengers) if recipe_of(slot) in stale]
    for slot in dropped:
        selection.challengers.pop(slot, None)
        selection.pairs.pop(slot, None)
        if selection.warm_up is not None:  # a fresh model started in the same slot is not judged on these errors
            for sums in (selection.warm_up.sums, selection.warm_up.counts, selection.warm_up.since):
                sums.pop(slot, None)
    events: list[ModelEvent] = []
    if selection.champion_recipe in stale:
        incumbent = spec.name
        decision = Decision(DEMOTION, selection.champion, incumbent, None, selection.scores(),
                            selection.labels_since_change)  # fmt: skip
        ranked = sorted(selection.challengers, key=lambda s: s != incumbent)  # its own slot first, then a fresh one
        kept = next((s for s in ranked if recipe_of(s) == incumbent), None)
        if kept is not None:
            shortest.model = selection.challengers.pop(kept)
            selection.pairs.pop(kept, None)
        else:
            shortest.model, shortest.learned = spec.build(), 0
        selection.restart(incumbent)
        events.append(model_event(decision, tick.symbol, lineage, tick.event_time, now_us, worker, selection.config))
    selection.start_missing()
    return events
