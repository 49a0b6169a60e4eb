"""A restored selection fitted to this release's registry of recipes (:mod:`tickcast.predictor.models`).

A snapshot keeps the champion and challengers its writer held, and the release restoring it may no longer
have one of their recipes, or build it in another version. Such a model cannot serve or compete here: serving
it would name a recipe this worker cannot build (and looking that name up after learning would fail every tick
of the symbol), or label the old version's model with the new version; and a challenger of it could be promoted
into the same place. The configured model's version is checked by the snapshot itself (another one is refused:
the symbol starts fresh); the same rule, model by model, holds here. So when a worker adopts a restored state,
each model of such a recipe is dropped, once: a challenger simply (a configured one starts again fresh), a champion by
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
from tickcast.predictor.models import MODELS, ModelSpec, recipes, versions_of
from tickcast.predictor.selection.champion import DEMOTION, Decision, ModelSelection, recipe_of
from tickcast.predictor.selection.events import model_event

log = structlog.get_logger("tickcast.predictor")


def stale_recipes(selection: ModelSelection) -> dict[str, str]:
    """Each recipe the selection holds a model of that this release cannot stand behind, with the reason.

    >>> from tickcast.predictor.selection.champion import SelectionConfig
    >>> selection = ModelSelection(SelectionConfig("linear", ("pa",)), champion="gone")
    >>> stale_recipes(selection)
    {'gone': "not in this release's registry"}
    >>> selection.built_under = "recipes=linear:1,pa:2"  # pickled by a release whose linear was version 1
    >>> stale_recipes(selection)["linear"]
    'built under version 1, this release builds version 2'

    A selection pickled before it named its versions (``built_under`` None) is taken as built by this release.
    """
    held = sorted({selection.champion_recipe, *(recipe_of(slot) for slot in selection.challengers)})
    built = versions_of(selection.built_under or recipes())
    stale = {}
    for recipe in held:
        spec = MODELS.get(recipe)
        if spec is None:
            stale[recipe] = "not in this release's registry"
        elif built.get(recipe, spec.version) != spec.version:
            stale[recipe] = f"built under version {built[recipe]}, this release builds version {spec.version}"
    return stale


def fit_to_release(
    selection: ModelSelection, shortest: HorizonState, spec: ModelSpec, tick: Tick, lineage: Lineage, now_us: int,
    worker: str,
) -> list[ModelEvent]:  # fmt: skip
    """Drop the models of stale recipes (see the module); ``shortest`` serves the configured ``spec`` if the
    champion was one. Returns the fallback's audit record, if any, made at the tick being processed."""
    stale = stale_recipes(selection)
    selection.built_under = recipes()  # what every model it keeps or starts from here on is built under
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
