"""The running scores of one model on one symbol, fed one scored target at a time and read as a :class:`Score`.

RMSE and MAE are ``river.metrics`` (running means, the same ones River's own evaluation uses). The
rest are counts with a rule of their own (see :mod:`tickcast.evaluation.scoring`): directional
accuracy and coverage only count clean, non-zero moves; outlier share and non-finite are tallies.

A River metric cannot be merged with another (``+`` on two metrics makes a collection of both), so the
``ALL`` row *pools* the per-symbol scores instead: each symbol's mean squared or absolute error, weighted
by how many targets it scored, which is the mean over all of them (:func:`pooled_score`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from river import metrics

from tickcast.evaluation.report import Score, SkillPoint

__all__ = ["RunningScores", "pooled_score"]


@dataclass(slots=True)
class RunningScores:
    """Everything one (model, symbol) score is made of, updated as targets arrive.

    The ``*_all`` metrics see every scored target; the others only the clean ones (target not flagged).

    >>> scores = RunningScores()
    >>> for realised, forecast in [(1.0, 0.5), (-2.0, 0.0), (0.0, 1.0)]:
    ...     scores.count_tick(flagged=False)
    ...     scores.add_target(realised, forecast, flagged=False)
    >>> s = scores.score("X")
    >>> round(s.rmse_bps, 4), round(s.rmse_persistence_bps, 4), round(s.mae_bps, 4), s.directional_accuracy
    (1.3229, 1.291, 1.1667, 1.0)
    """

    ticks: int = 0
    outliers: int = 0
    non_finite: int = 0
    scored: int = 0
    scored_flagged: int = 0
    moves: int = 0
    """Clean targets whose realised return is non-zero."""
    called: int = 0
    """Of those, the ones with a non-zero forecast."""
    hits: int = 0
    """Of those, the ones whose forecast had the realised return's sign."""
    rmse_all: metrics.RMSE = field(default_factory=metrics.RMSE)
    rmse_persistence_all: metrics.RMSE = field(default_factory=metrics.RMSE)
    rmse: metrics.RMSE = field(default_factory=metrics.RMSE)
    rmse_persistence: metrics.RMSE = field(default_factory=metrics.RMSE)
    mae: metrics.MAE = field(default_factory=metrics.MAE)
    mae_persistence: metrics.MAE = field(default_factory=metrics.MAE)

    @property
    def clean(self) -> int:
        """Scored targets that were not outlier-flagged."""
        return self.scored - self.scored_flagged

    def count_tick(self, flagged: bool) -> None:
        """Count one tick of the symbol, and whether the forecaster flagged its own return."""
        self.ticks += 1
        self.outliers += flagged

    def add_target(self, realised: float, forecast: float, flagged: bool) -> None:
        """Score ``forecast`` against the ``realised`` return (bps); persistence forecast 0 on the same target."""
        self.scored += 1
        self.rmse_all.update(realised, forecast)
        self.rmse_persistence_all.update(realised, 0.0)
        if flagged:
            self.scored_flagged += 1
            return
        self.rmse.update(realised, forecast)
        self.rmse_persistence.update(realised, 0.0)
        self.mae.update(realised, forecast)
        self.mae_persistence.update(realised, 0.0)
        if realised != 0.0:
            self.moves += 1
            if forecast != 0.0:
                self.called += 1
                self.hits += (realised > 0.0) == (forecast > 0.0)

    def skill_point(self, event_time: int) -> SkillPoint:
        """Cumulative skill so far, as a point of the symbol's skill curve."""
        return SkillPoint(
            self.ticks,
            event_time,
            _skill(self.rmse.get(), self.rmse_persistence.get()),
            _skill(self.rmse_all.get(), self.rmse_persistence_all.get()),
        )

    def score(self, symbol: str) -> Score:
        """The scores so far, as reported for ``symbol``."""
        return pooled_score(symbol, [self])


def pooled_score(symbol: str, parts: Sequence[RunningScores]) -> Score:
    """The score over the union of the targets of ``parts`` (disjoint: one part per symbol).

    >>> a, b = RunningScores(), RunningScores()
    >>> a.add_target(3.0, 0.0, flagged=False); b.add_target(-1.0, 0.0, flagged=False)
    >>> b.add_target(1.0, 0.0, flagged=False)
    >>> round(pooled_score("ALL", [a, b]).rmse_bps, 6) == round(math.sqrt((9 + 1 + 1) / 3), 6)
    True
    """
    ticks = sum(p.ticks for p in parts)
    scored = sum(p.scored for p in parts)
    clean = sum(p.clean for p in parts)
    called = sum(p.called for p in parts)
    rmse_all = _pooled_rms([(p.scored, p.rmse_all.get()) for p in parts], scored)
    rmse_persistence_all = _pooled_rms([(p.scored, p.rmse_persistence_all.get()) for p in parts], scored)
    rmse = _pooled_rms([(p.clean, p.rmse.get()) for p in parts], clean)
    rmse_persistence = _pooled_rms([(p.clean, p.rmse_persistence.get()) for p in parts], clean)
    return Score(
        symbol=symbol,
        ticks=ticks,
        scored=scored,
        scored_flagged=sum(p.scored_flagged for p in parts),
        outlier_share=_ratio(sum(p.outliers for p in parts), ticks) or 0.0,
        rmse_all_bps=rmse_all,
        rmse_persistence_all_bps=rmse_persistence_all,
        skill_all=_skill(rmse_all, rmse_persistence_all),
        rmse_bps=rmse,
        rmse_persistence_bps=rmse_persistence,
        skill=_skill(rmse, rmse_persistence),
        mae_bps=_pooled_mean([(p.clean, p.mae.get()) for p in parts], clean),
        mae_persistence_bps=_pooled_mean([(p.clean, p.mae_persistence.get()) for p in parts], clean),
        directional_accuracy=_ratio(sum(p.hits for p in parts), called),
        coverage=_ratio(called, sum(p.moves for p in parts)),
        non_finite=sum(p.non_finite for p in parts),
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _pooled_mean(parts: list[tuple[int, float]], count: int) -> float | None:
    if len(parts) == 1:  # one symbol: River's value as it is
        return parts[0][1] if count else None
    return _ratio(sum(n * mean for n, mean in parts), count)


def _pooled_rms(parts: list[tuple[int, float]], count: int) -> float | None:
    if len(parts) == 1:
        return parts[0][1] if count else None
    mean_square = _ratio(sum(n * rms * rms for n, rms in parts), count)
    return None if mean_square is None else math.sqrt(mean_square)


def _skill(rmse: float | None, rmse_persistence: float | None) -> float | None:
    # Both RMSEs are over the same targets, so their ratio compares like with like.
    if rmse is None or not rmse_persistence:
        return None
    return 1.0 - rmse / rmse_persistence
