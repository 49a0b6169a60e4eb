"""Replay ticks through :class:`Forecaster` with no broker and score the forecasts against what happened.

Every model gets its own ``Forecaster`` and sees the same ticks in the same order, through the very
``process`` step the Faust worker runs. Scoring rules, per symbol and summed over symbols:

* **What is scored.** A prediction counts once its status is READY and the symbol's next tick has
  arrived; the target is that tick's raw log-return ``r = 1e4·ln(p_next / p)`` in bps (not the clipped
  value the features see). Persistence (forecast 0) is scored on exactly the same ticks, so
  ``skill = 1 - RMSE(model) / RMSE(persistence)`` compares like with like. Models with different
  warm-ups are therefore scored on slightly different tick sets (a few dozen ticks per symbol).
* **Outlier-flagged targets.** A target whose tick the forecaster flagged ``outlier`` is counted in the
  *all* columns and left out of the *clean* ones. Clean is the column to judge a model by; all is shown
  so nothing hides. Why: the sample file has off-market prints (SPY +90 bps and back within 200 ms,
  venue D); on SPY the 0.02% of targets that are flagged carry 95% of persistence's squared error, so
  RMSE over all ticks mostly measures how a model guesses those prints. Guessing them does not pay: a
  rule forecasting 70% of the way back after a flagged print lifted SPY's all-skill from 0.01 to 0.22
  but sank its clean skill from 0.09 to -0.15, because some flagged moves are real and the unflagged
  tick after them then carries the error. Flags come from the shared feature code, so every model
  sees the same ones.
* **Directional accuracy** is measured on clean targets where the realised return is non-zero *and*
  the forecast is non-zero (exactly, no tolerance): a hit when the signs agree. ``coverage`` is the
  share of clean non-zero realised returns on which the forecast was non-zero, so a model that
  abstains (persistence always does) shows low coverage instead of a flattering accuracy.
* **MAE** is mean absolute error on clean targets, shown beside persistence's MAE. Most ticks do not
  move, so persistence (the median) is close to MAE-optimal; MAE is a check, not a target.
* **Outlier share** is the share of all ticks whose own return the forecaster flagged.
* **Non-finite** counts predictions whose return or price is NaN/inf; such a forecast is scored as 0.
* **ticks/s** is ticks divided by the wall time spent inside ``Forecaster.process`` only.

Cumulative clean skill is recorded every ``checkpoint_every`` scored ticks of a symbol, for
:func:`tickcast.evaluation.plot.plot_skill`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from tickcast.common.records import Lineage, Tick
from tickcast.predictor.forecaster import FLAG_OUTLIER, READY, Forecaster
from tickcast.predictor.models import ModelSpec, model_spec

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["EvaluationReport", "ModelReport", "Score", "SkillPoint", "evaluate"]

OVERALL = "ALL"
"""The pseudo-symbol under which sums over every symbol are reported."""


@dataclass(frozen=True, slots=True)
class SkillPoint:
    """Cumulative skill of one symbol after ``ticks`` of its ticks (``event_time`` epoch ms)."""

    ticks: int
    event_time: int
    skill: float | None
    skill_all: float | None


@dataclass(frozen=True, slots=True)
class Score:
    """How one model did on one symbol (or on all of them, as symbol ``ALL``); RMSE and MAE in bps.

    ``None`` marks an undefined ratio (nothing scored, or persistence made no error).
    """

    symbol: str
    ticks: int
    scored: int
    scored_flagged: int
    outlier_share: float
    rmse_all_bps: float | None
    rmse_persistence_all_bps: float | None
    skill_all: float | None
    rmse_bps: float | None
    rmse_persistence_bps: float | None
    skill: float | None
    mae_bps: float | None
    mae_persistence_bps: float | None
    directional_accuracy: float | None
    coverage: float | None
    non_finite: int


@dataclass(slots=True)
class _Sums:
    """Running sums for one (model, symbol); every score is a ratio of these."""

    ticks: int = 0
    outliers: int = 0
    non_finite: int = 0
    scored: int = 0
    scored_flagged: int = 0
    sse_all: float = 0.0
    sse_persistence_all: float = 0.0
    sse: float = 0.0
    sse_persistence: float = 0.0
    sae: float = 0.0
    sae_persistence: float = 0.0
    moves: int = 0
    called: int = 0
    hits: int = 0

    def add(self, other: _Sums) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def score(self, symbol: str) -> Score:
        clean = self.scored - self.scored_flagged
        return Score(
            symbol=symbol,
            ticks=self.ticks,
            scored=self.scored,
            scored_flagged=self.scored_flagged,
            outlier_share=_ratio(self.outliers, self.ticks) or 0.0,
            rmse_all_bps=_rmse(self.sse_all, self.scored),
            rmse_persistence_all_bps=_rmse(self.sse_persistence_all, self.scored),
            skill_all=_skill(self.sse_all, self.sse_persistence_all),
            rmse_bps=_rmse(self.sse, clean),
            rmse_persistence_bps=_rmse(self.sse_persistence, clean),
            skill=_skill(self.sse, self.sse_persistence),
            mae_bps=_ratio(self.sae, clean),
            mae_persistence_bps=_ratio(self.sae_persistence, clean),
            directional_accuracy=_ratio(self.hits, self.called),
            coverage=_ratio(self.called, self.moves),
            non_finite=self.non_finite,
        )


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _rmse(sse: float, count: int) -> float | None:
    return math.sqrt(sse / count) if count else None


def _skill(sse: float, sse_persistence: float) -> float | None:
    # sqrt of the SSE ratio is the RMSE ratio, as both are over the same ticks.
    return 1.0 - math.sqrt(sse / sse_persistence) if sse_persistence > 0.0 else None


@dataclass(frozen=True, slots=True)
class ModelReport:
    """One model's scores per symbol (sorted by name), over all symbols, and its skill over time."""

    name: str
    version: str
    ticks_per_second: float | None
    overall: Score
    symbols: list[Score]
    series: dict[str, list[SkillPoint]]


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """Every model's :class:`ModelReport`, in the order the models were asked for.

    >>> from tickcast.common.records import Tick
    >>> ticks = [Tick("X", p, 1.0, i) for i, p in enumerate([10.0, 10.01, 10.0, 10.01, 10.0])]
    >>> report = evaluate(ticks, ["mean-reversion"])
    >>> report.model("mean-reversion").overall.directional_accuracy
    1.0
    >>> json.loads(report.to_json())["models"][0]["symbols"][0]["symbol"]
    'X'
    """

    models: list[ModelReport]
    checkpoint_every: int

    def model(self, name: str) -> ModelReport:
        """The report of the model called ``name``."""
        for report in self.models:
            if report.name == name:
                return report
        raise KeyError(name)

    def to_json(self, indent: int | None = 2) -> str:
        """The whole report as JSON; undefined ratios are ``null``."""
        return json.dumps(asdict(self), indent=indent, allow_nan=False)

    def render_table(self) -> Table:
        """A rich table: one row per (model, symbol), then the model's ``ALL`` row.

        >>> from tickcast.common.records import Tick
        >>> report = evaluate([Tick("X", 10.0 + (i % 2) / 100, 1.0, i) for i in range(6)], ["persistence"])
        >>> report.render_table().row_count
        2
        """
        from rich.table import Table

        table = Table(title="Next-tick return forecasts (RMSE/MAE in bps; skill vs persistence)")
        for header in (
            "model",
            "symbol",
            "ticks",
            "RMSE",
            "skill",
            "RMSE all",
            "skill all",
            "dir. acc.",
            "coverage",
            "MAE",
            "MAE pers.",
            "outliers",
            "non-finite",
            "ticks/s",
        ):
            table.add_column(header, justify="left" if header in ("model", "symbol") else "right")
        for report in self.models:
            for i, score in enumerate([*report.symbols, report.overall]):
                speed = report.ticks_per_second if score.symbol == OVERALL else None
                table.add_row(
                    report.name if i == 0 else "",
                    score.symbol,
                    f"{score.ticks:,}",
                    _fmt(score.rmse_bps, 3),
                    _fmt(score.skill, 4),
                    _fmt(score.rmse_all_bps, 3),
                    _fmt(score.skill_all, 4),
                    _fmt(score.directional_accuracy, 3),
                    _fmt(score.coverage, 3),
                    _fmt(score.mae_bps, 3),
                    _fmt(score.mae_persistence_bps, 3),
                    f"{score.outlier_share:.3%}",
                    str(score.non_finite),
                    "" if speed is None else f"{speed:,.0f}",
                    end_section=score.symbol == OVERALL,
                )
        return table


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@dataclass(slots=True)
class _SymbolRun:
    """What scoring one model on one symbol needs to remember between that symbol's ticks."""

    sums: _Sums = field(default_factory=_Sums)
    last_log_price: float | None = None
    last_time: int = 0
    pending: float | None = None
    """The READY forecast made at the previous tick, waiting for its target; None if there is none."""
    series: list[SkillPoint] = field(default_factory=list)


@dataclass(slots=True)
class _ModelRun:
    spec: ModelSpec
    forecaster: Forecaster
    symbols: dict[str, _SymbolRun] = field(default_factory=dict)
    seconds: float = 0.0
    ticks: int = 0


def evaluate(
    ticks: Iterable[Tick], models: Sequence[str | ModelSpec], checkpoint_every: int = 1000
) -> EvaluationReport:
    """Replay ``ticks`` once through a fresh ``Forecaster`` per model and score every READY forecast.

    ``models`` are registry names (or ready-made :class:`ModelSpec` objects, for experiments).

    >>> from tickcast.common.records import Tick
    >>> prices = [100.0, 100.01, 100.0, 100.0, 100.01]
    >>> score = evaluate([Tick("X", p, 1.0, i) for i, p in enumerate(prices)], ["persistence"]).models[0].overall
    >>> score.scored, round(score.rmse_persistence_bps, 4), score.skill
    (3, 0.8165, 0.0)
    """
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    specs = [model_spec(m) if isinstance(m, str) else m for m in models]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be distinct, got {names}")
    runs = [_ModelRun(spec, Forecaster(spec, worker="evaluate")) for spec in specs]
    clock = time.perf_counter
    for offset, tick in enumerate(ticks):
        lineage = Lineage("replay", 0, offset, tick.event_time)
        now_us = tick.event_time * 1000
        for run in runs:
            started = clock()
            prediction = run.forecaster.process(tick, lineage, now_us)
            run.seconds += clock() - started
            run.ticks += 1
            symbol = run.symbols.get(tick.symbol)
            if symbol is None:
                symbol = run.symbols[tick.symbol] = _SymbolRun()
            _score_tick(
                symbol,
                tick,
                prediction.predicted_return_bps,
                prediction.predicted_price,
                prediction.status == READY,
                FLAG_OUTLIER in prediction.flags,
                checkpoint_every,
            )
    return EvaluationReport([_report(run) for run in runs], checkpoint_every)


def _score_tick(
    run: _SymbolRun,
    tick: Tick,
    forecast: float,
    predicted_price: float,
    ready: bool,
    flagged: bool,
    checkpoint_every: int,
) -> None:
    sums = run.sums
    sums.ticks += 1
    sums.outliers += flagged
    log_price = math.log(tick.price)
    if run.pending is not None and run.last_log_price is not None:
        # As in the features: a difference of logs cannot overflow or reach log(0) as a ratio can.
        realised = 1e4 * (log_price - run.last_log_price)
        error = realised - run.pending
        sums.scored += 1
        sums.sse_all += error * error
        sums.sse_persistence_all += realised * realised
        if flagged:
            sums.scored_flagged += 1
        else:
            sums.sse += error * error
            sums.sse_persistence += realised * realised
            sums.sae += abs(error)
            sums.sae_persistence += abs(realised)
            if realised != 0.0:
                sums.moves += 1
                if run.pending != 0.0:
                    sums.called += 1
                    sums.hits += (realised > 0.0) == (run.pending > 0.0)
        if sums.scored % checkpoint_every == 0:
            run.series.append(_point(sums, tick.event_time))
    run.last_log_price = log_price
    run.last_time = tick.event_time
    if not ready:
        run.pending = None
    elif math.isfinite(forecast) and math.isfinite(predicted_price):
        run.pending = forecast
    else:
        sums.non_finite += 1
        run.pending = 0.0


def _point(sums: _Sums, event_time: int) -> SkillPoint:
    return SkillPoint(
        sums.ticks, event_time, _skill(sums.sse, sums.sse_persistence), _skill(sums.sse_all, sums.sse_persistence_all)
    )


def _report(run: _ModelRun) -> ModelReport:
    total = _Sums()
    scores: list[Score] = []
    series: dict[str, list[SkillPoint]] = {}
    for name in sorted(run.symbols):
        symbol = run.symbols[name]
        total.add(symbol.sums)
        scores.append(symbol.sums.score(name))
        points = list(symbol.series)
        # Close the curve at the symbol's last tick, so a short tail after a checkpoint is not lost.
        if symbol.sums.scored and (not points or points[-1].ticks != symbol.sums.ticks):
            points.append(_point(symbol.sums, symbol.last_time))
        series[name] = points
    return ModelReport(
        name=run.spec.name,
        version=run.spec.full_version,
        ticks_per_second=run.ticks / run.seconds if run.seconds > 0.0 else None,
        overall=total.score(OVERALL),
        symbols=scores,
        series=series,
    )
