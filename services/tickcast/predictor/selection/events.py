"""A selection :class:`~tickcast.predictor.selection.champion.Decision` as a ``model-events`` record."""

from __future__ import annotations

from typing import Any

from tickcast.common.model_events import ChallengerStanding, ModelEvent
from tickcast.common.records import Lineage
from tickcast.predictor.selection.champion import Decision, SelectionConfig


def model_event(
    decision: Decision,
    symbol: str,
    lineage: Lineage,
    event_time: int,
    now_us: int,
    worker: str,
    config: SelectionConfig,
) -> ModelEvent:
    """The audit record of ``decision``, made at the tick of ``lineage`` whose label decided it.

    >>> from tickcast.predictor.selection.champion import DRIFT
    >>> config = SelectionConfig("linear", ("pa",))
    >>> event = model_event(Decision(DRIFT, "linear", "linear~fresh", None, (), 7), "SPY",
    ...                     Lineage("ticks", 1, 99, 0), 5, 6, "w", config)
    >>> event.kind, event.to_model, event.source_offset, event.p_value
    ('DRIFT', 'linear~fresh', 99, 1.0)
    """
    verdict = decision.verdict
    standings = tuple(
        ChallengerStanding(s.model, s.samples, s.champion_mse, s.challenger_mse, s.statistic) for s in decision.scores
    )
    evidence: dict[str, Any] = {}
    if verdict is not None:
        evidence = {
            "samples": verdict.samples,
            "statistic": verdict.statistic,
            "p_value": verdict.p_value,
            "champion_mse": verdict.champion_mse,
            "challenger_mse": verdict.challenger_mse,
            "skill_margin": verdict.skill_margin,
            "level": verdict.level,
            "min_skill_margin": config.promotion.min_skill_margin,
        }
    return ModelEvent(
        decision.kind, symbol, decision.from_model, decision.to_model, lineage.topic, lineage.partition,
        lineage.offset, event_time, now_us, worker, labels_since_change=decision.labels_since_change,
        challengers=standings, **evidence,
    )  # fmt: skip
