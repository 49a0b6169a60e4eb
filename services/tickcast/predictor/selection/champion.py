"""One symbol's champion and challengers: score what was served against what each challenger would have served.

The champion's model lives in the symbol's state (``SymbolState.model``) and serves; the challengers
live here. Per tick, in the forecaster's order:

1. when the label of the last tick arrives, :meth:`ModelSelection.learn_one` scores the forecast that
   was served against the challengers' forecasts for the same target (on sampled ticks only), feeds the
   served residual to the drift detector, teaches every challenger, and may swap a challenger in;
2. :meth:`ModelSelection.forecast` asks the challengers for the next target on a share
   (``score_fraction``) of ticks: the cost of a challenger is its ``learn_one`` on every tick plus its
   ``predict_one`` on that share.

A symbol's first labels are a warm-up (:mod:`tickcast.predictor.selection.warm_up`): served as warming up
until a first look, then the model with the lowest recent error at a few doubling looks; the rule alone after.

Sampling is a deterministic credit counter, not a random draw, so a replay after failover scores the same
ticks. With k challengers, each pair is tested at ``level / k`` (Bonferroni), so the chance that some
challenger of an equal set passes by luck stays at ``level``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from tickcast.predictor.models import MODELS, OnlineRegressor, model_spec, recipes
from tickcast.predictor.selection.drift import DriftDetector, DriftPolicy, new_detector
from tickcast.predictor.selection.rule import PairedLosses, PromotionPolicy, Verdict, judge
from tickcast.predictor.selection.shared_config import register, shared
from tickcast.predictor.selection.warm_up import WarmUp, warm_up_looks

log = structlog.get_logger("tickcast.predictor")

PROMOTION, DEMOTION, DRIFT = "PROMOTION", "DEMOTION", "DRIFT"
FRESH_SUFFIX = "~fresh"
#: A symbol counts as drifting for this many labels after a detection (the fleet alert's share).
DRIFTING_FOR_LABELS = 1000


def recipe_of(slot: str) -> str:
    """The registry name behind a challenger slot (a fresh restart of a recipe has its own slot).

    >>> recipe_of("linear~fresh"), recipe_of("pa")
    ('linear', 'pa')
    """
    return slot.split("~", 1)[0]


@dataclass(frozen=True, slots=True, weakref_slot=True)
class SelectionConfig:
    """What every symbol's selection runs with: the worker's settings, shared by all symbols (and by restored
    ones: see :mod:`~tickcast.predictor.selection.shared_config`)."""

    incumbent: str
    """The configured model (TICKCAST_MODEL): a change away from it is a promotion, back to it a demotion."""
    challengers: tuple[str, ...] = ()
    score_fraction: float = 1.0
    promotion: PromotionPolicy = field(default_factory=PromotionPolicy)
    drift: DriftPolicy = field(default_factory=DriftPolicy)

    def __post_init__(self) -> None:
        register(self)


@dataclass(frozen=True, slots=True)
class ChallengerScore:
    """A challenger's standing against the champion since their comparison (re)started."""

    model: str
    samples: int
    champion_mse: float
    challenger_mse: float
    statistic: float


@dataclass(frozen=True, slots=True)
class Decision:
    """A promotion, demotion or drift detection, with the evidence behind it."""

    kind: str
    from_model: str
    to_model: str
    verdict: Verdict | None
    scores: tuple[ChallengerScore, ...]
    labels_since_change: int


def warm_up_of(config: SelectionConfig) -> tuple[int, ...]:
    """The looks of a new symbol's warm-up; none with no challenger (drift detection alone: nothing to choose).

    >>> warm_up_of(SelectionConfig("linear", ("pa",))), warm_up_of(SelectionConfig("linear"))
    ((25, 50, 100, 200, 400, 800, 1600, 3200), ())
    """
    if not config.challengers:
        return ()
    return warm_up_looks(config.promotion.warm_up_first_look, config.promotion.warm_up_labels)


#: What a :class:`ModelSelection` pickles (all its instance attributes).
_SELECTION_ATTRIBUTES = (
    "champion", "challengers", "pairs", "pending", "labels_since_change", "labels_since_drift", "detector",
    "_credit", "_config", "_adopted", "warm_up", "built_under",
)  # fmt: skip


class ModelSelection:
    """Champion name, challenger models and their running comparisons for one symbol (pickled with its state).

    >>> config = SelectionConfig("persistence", ("mean-reversion",), promotion=PromotionPolicy(50, cooldown=0))
    >>> selection = ModelSelection(config)
    >>> champion = model_spec("persistence").build()
    >>> decisions = []
    >>> for t in range(200):
    ...     last = 1.0 if t % 2 else -1.0  # a bounce: mean reversion forecasts it, persistence does not
    ...     selection.forecast({"last_nonzero_bps": last}, limit=50.0)
    ...     label = -0.3 * last + 0.1 * (t * 7 % 5 - 2)
    ...     champion, found = selection.learn_one({"last_nonzero_bps": last}, label, 0.0, champion)
    ...     decisions += found
    >>> [(d.kind, d.from_model, d.to_model) for d in decisions], selection.champion
    ([('PROMOTION', 'persistence', 'mean-reversion')], 'mean-reversion')
    """

    warm_up: WarmUp | None = None
    """The symbol's first labels (see :mod:`~tickcast.predictor.selection.warm_up`); None once over, and in a
    selection pickled before warm-ups existed (it is past its first labels)."""
    built_under: str | None = None
    """The recipe versions (:func:`~tickcast.predictor.models.recipes`) its models were built under; None in a
    selection pickled before it named them."""

    def __init__(self, config: SelectionConfig, champion: str | None = None) -> None:
        self.champion = champion or config.incumbent
        self.challengers: dict[str, OnlineRegressor] = {}
        self.pairs: dict[str, PairedLosses] = {}
        self.pending: dict[str, float] | None = None
        """The challengers' forecasts of the next label, on sampled ticks."""
        self.labels_since_change = 0
        self.labels_since_drift: int | None = None
        self.detector: DriftDetector | None = None
        self._credit = 0.0
        self._config = config
        self._adopted: SelectionConfig | None = None
        """The configuration object last reconciled with (a restored copy is another object)."""
        self.warm_up = WarmUp(warm_up_of(config)) if warm_up_of(config) else None
        self.built_under = recipes()
        self.reconcile(config)

    def __getstate__(self) -> dict[str, Any]:
        # By name: asking for __dict__ would give the live object a real one (its attributes are inline).
        return {name: getattr(self, name) for name in _SELECTION_ATTRIBUTES}

    def __setstate__(self, state: dict[str, Any] | tuple[dict[str, Any] | None, dict[str, Any] | None]) -> None:
        # Attribute by attribute, as __init__ set them (they stay inline); then the worker's equal configuration
        # for the snapshot's copy (shared_config). Snapshots pickled (None, attributes) before this method existed.
        parts = state if isinstance(state, tuple) else (state,)
        for attributes in parts:
            for name, value in (attributes or {}).items():
                setattr(self, name, value)
        config = self._config
        self._config = shared(config)
        if self._adopted is config:
            self._adopted = self._config

    @property
    def champion_recipe(self) -> str:
        return recipe_of(self.champion)

    @property
    def cold(self) -> bool:
        """Before the warm-up's first look: no evidence for any model yet, so the symbol serves as warming up."""
        return self.warm_up is not None and self.warm_up.samples < self.warm_up.looks[0]

    @property
    def drifting(self) -> bool:
        """A drift was detected in the last :data:`DRIFTING_FOR_LABELS` labels."""
        return self.labels_since_drift is not None and self.labels_since_drift < DRIFTING_FOR_LABELS

    def reconcile(self, config: SelectionConfig) -> None:
        """Adopt ``config``: add configured challengers that are missing, drop those no longer configured.

        Called once per configuration object (after a restore, the pickled one is a copy, so once per symbol).
        """
        if config is self._adopted:
            return
        wanted = {config.incumbent, *config.challengers} - {self.champion_recipe}
        for slot in [s for s in self.challengers if s not in wanted and not s.endswith(FRESH_SUFFIX)]:
            del self.challengers[slot], self.pairs[slot]
        self.start_missing(config)
        if not self.challengers:
            # Nothing to choose from (a restored symbol whose worker runs drift detection alone): a warm-up would
            # wait for looks no challenger is scored for, and keep the symbol cold for good.
            self.warm_up = None
        if self.detector is None or self._adopted is None or self._config.drift != config.drift:
            self.detector = new_detector(config.drift)
        self._config = self._adopted = config

    @property
    def config(self) -> SelectionConfig:
        return self._config

    def start_missing(self, config: SelectionConfig | None = None) -> None:
        """Start every challenger ``config`` (by default the one held) names that is missing, fresh; but not one this
        release lacks, which only a restored copy of another release's configuration names (the worker's replaces
        it)."""
        config = config or self._config
        for name in sorted({config.incumbent, *config.challengers} - {self.champion_recipe} - set(self.challengers)):
            if name in MODELS:
                self._start(name)

    def restart(self, champion: str) -> None:
        """Make ``champion`` the champion: every comparison and the drift detector start again (its model is the
        caller's to serve)."""
        self.champion = champion
        self.pairs = {name: PairedLosses(self._config.promotion.hac_lags) for name in self.challengers}
        self.labels_since_change = 0
        self.detector = new_detector(self._config.drift)

    def _start(self, slot: str) -> None:
        self.challengers[slot] = model_spec(recipe_of(slot)).build()
        self.pairs[slot] = PairedLosses(self._hac_lags())

    def _hac_lags(self) -> int:
        return self._config.promotion.hac_lags

    def forecast(self, features: dict[str, Any], limit: float, champion_model: OnlineRegressor | None = None) -> None:
        """On sampled ticks, the challengers' forecasts of the next label, clipped to ``limit`` as the champion's.

        During the warm-up, ``champion_model``'s own forecast too: while cold, what was served is not its forecast.
        """
        config = self._config
        self._credit += config.score_fraction
        if self._credit < 1.0 or not self.challengers:
            self.pending = None
            return
        self._credit -= 1.0
        pending: dict[str, float] = {}
        models = dict(self.challengers)
        if champion_model is not None and self.warm_up is not None:
            models[self.champion] = champion_model
        for slot, model in models.items():
            try:
                raw = model.predict_one(features)
            except Exception:
                log.exception("challenger_predict_failed", model=slot)
                raw = None
            if raw is None or not math.isfinite(raw):
                if slot in self.challengers:
                    self._start(slot)  # a broken challenger starts over, as a broken champion does
                continue
            pending[slot] = max(-limit, min(limit, float(raw)))
        self.pending = pending

    def learn_one(
        self, features: dict[str, Any], label: float, served: float, champion_model: OnlineRegressor
    ) -> tuple[OnlineRegressor, list[Decision]]:
        """Score the served forecast of ``label`` against the challengers', teach them, maybe swap one in.

        Returns the model that serves from now on (``champion_model`` unless a challenger replaced it) and
        what was decided. Never raises: a challenger that fails to learn starts over.
        """
        config = self._config
        decisions: list[Decision] = []
        self.labels_since_change += 1
        if self.labels_since_drift is not None:
            self.labels_since_drift += 1
        served_loss = (label - served) ** 2
        if self.detector is not None:
            self.detector.update(abs(label - served))
            if self.detector.drift_detected:
                decisions.append(self._drifted(config))
        scored, pending = False, self.pending
        warm_look = False
        if pending and self.warm_up is not None:
            losses = {slot: (label - forecast) ** 2 for slot, forecast in pending.items()}
            warm_look = self.warm_up.add({self.champion: served_loss, **losses})
        if pending:
            for slot, forecast in pending.items():
                pair = self.pairs.get(slot)
                if pair is None:
                    continue
                if pair.samples >= config.promotion.window:
                    pair = self.pairs[slot] = PairedLosses(config.promotion.hac_lags)
                pair.update(served_loss, (label - forecast) ** 2)
                scored = True
        self.pending = None
        for slot, model in list(self.challengers.items()):
            try:
                model.learn_one(features, label)
            except Exception:
                log.exception("challenger_learn_failed", model=slot)
                self._start(slot)
        decided = len(decisions)
        if warm_look:
            champion_model = self._warm_up_look(champion_model, decisions)
        if scored and len(decisions) == decided:  # the rule does not look again at a label the warm-up used
            best = self._best_promotable(config)
            if best is not None:
                champion_model = self._promote(best[0], best[1], champion_model, decisions)
        return champion_model, decisions

    def _warm_up_look(self, champion_model: OnlineRegressor, decisions: list[Decision]) -> OnlineRegressor:
        """At a warm-up look, make the leader so far champion; after the last look, leave it to the rule."""
        warm, margin = self.warm_up, self._config.promotion.min_skill_margin
        if warm is None:
            return champion_model
        leader = warm.leader(self.champion, self.challengers, margin)
        if warm.finished:
            self.warm_up = None
        if leader is None:
            return champion_model
        slot, champion_mse, leader_mse = leader
        # Level 1 and no statistic: the audit record says no test was asked for, only the lower error so far.
        skill = 1.0 - leader_mse / champion_mse
        verdict = Verdict(True, "warm_up", 1.0, warm.samples, 0.0, 1.0, champion_mse, leader_mse, skill)
        return self._promote(slot, verdict, champion_model, decisions)

    def _best_promotable(self, config: SelectionConfig) -> tuple[str, Verdict] | None:
        policy = config.promotion
        # Only pairs at a look are tested; this runs on every scored label, so the rest costs nothing.
        looking = [(slot, pair) for slot, pair in self.pairs.items() if policy.is_look(pair.samples)]
        if not looking:
            return None
        corrected = replace(policy, level=policy.level / max(1, len(self.pairs)))
        best: tuple[str, Verdict] | None = None
        for slot, pair in looking:
            verdict = judge(pair, corrected, self.labels_since_change)
            if verdict.reason == "worse":  # this round is lost: start the next one on fresh sums
                self.pairs[slot] = PairedLosses(policy.hac_lags)
            elif verdict.promote and (best is None or verdict.statistic > best[1].statistic):
                best = (slot, verdict)
        return best

    def scores(self) -> tuple[ChallengerScore, ...]:
        return tuple(
            ChallengerScore(slot, pair.samples, pair.champion_mse, pair.challenger_mse, pair.statistic())
            for slot, pair in sorted(self.pairs.items())
        )

    def _promote(
        self, slot: str, verdict: Verdict, champion_model: OnlineRegressor, decisions: list[Decision]
    ) -> OnlineRegressor:
        previous, scores = self.champion, self.scores()
        kind = DEMOTION if recipe_of(slot) == self._config.incumbent else PROMOTION
        decisions.append(Decision(kind, previous, slot, verdict, scores, self.labels_since_change))
        promoted = self.challengers.pop(slot)
        del self.pairs[slot]
        # The old champion stays as a challenger (it can win its place back by the same rule), unless it was
        # a fresh restart of the recipe now serving.
        if recipe_of(previous) != recipe_of(slot):
            self.challengers[previous] = champion_model
        # Every comparison was against the old champion's errors: start them again, and the drift detector too.
        self.restart(slot)
        return promoted

    def _drifted(self, config: SelectionConfig) -> Decision:
        self.labels_since_drift = 0
        fresh = self.champion_recipe + FRESH_SUFFIX
        if fresh == self.champion:
            # The champion is itself a fresh restart (promoted after an earlier drift): under its name, the new one
            # would be audited as "linear~fresh -> linear~fresh", and its scores filed under the champion's name.
            fresh += FRESH_SUFFIX
        if config.drift.fresh_challenger:
            self._start(fresh)  # replaces an older fresh restart: it learned partly from before the change
        return Decision(DRIFT, self.champion, fresh if config.drift.fresh_challenger else self.champion,
                        None, self.scores(), self.labels_since_change)  # fmt: skip
