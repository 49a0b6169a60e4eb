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

The running RMSE and MAE are ``river.metrics``; the counts and the pooling into the ``ALL`` row are in
:mod:`tickcast.evaluation.running_scores`, the report's shape in :mod:`tickcast.evaluation.report`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from tickcast.common.records import Lineage, Tick
from tickcast.evaluation.report import OVERALL, EvaluationReport, ModelReport, SkillPoint
from tickcast.evaluation.running_scores import RunningScores, pooled_score
from tickcast.predictor.forecaster import FLAG_OUTLIER, READY, Forecaster
from tickcast.predictor.models import ModelSpec, model_spec
from tickcast.predictor.selection.champion import SelectionConfig

__all__ = ["evaluate"]


@dataclass(slots=True)
class _SymbolRun:
    """What scoring one model on one symbol needs to remember between that symbol's ticks."""

    scores: RunningScores = field(default_factory=RunningScores)
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


def selection_label(config: SelectionConfig) -> str:
    """How a champion/challenger run is named in a report.

    >>> selection_label(SelectionConfig("linear", ("pa", "ew-mean")))
    'select:linear>pa,ew-mean'
    """
    return f"select:{config.incumbent}>{','.join(config.challengers)}"


def evaluate(
    ticks: Iterable[Tick],
    models: Sequence[str | ModelSpec],
    checkpoint_every: int = 1000,
    selections: Sequence[SelectionConfig] = (),
    every_tick: bool = False,
) -> EvaluationReport:
    """Replay ``ticks`` once through a fresh ``Forecaster`` per model and score every READY forecast.

    ``models`` are registry names (or ready-made :class:`ModelSpec` objects, for experiments). Each of
    ``selections`` adds a run where the configured model starts as champion and the challengers may replace
    it per symbol, as in a worker with ``TICKCAST_CHALLENGERS``; it is scored on what it served.

    ``every_tick`` also scores the forecasts made while warming up (the 0 that was served, persistence's), so
    every run is scored on the same ticks: what compares a selection run with the single models fairly, as
    models warm up for different numbers of ticks and a symbol's first trades are its wildest.

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
    for config in selections:
        # Renamed for the report only: the forecaster must know its model by the name selection calls it.
        incumbent = model_spec(config.incumbent)
        forecaster = Forecaster(incumbent, worker="evaluate", selection=config)
        runs.append(_ModelRun(replace(incumbent, name=selection_label(config)), forecaster))
    clock = time.perf_counter
    for offset, tick in enumerate(ticks):
        lineage = Lineage("replay", 0, offset, tick.event_time)
        now_us = tick.event_time * 1000
        for run in runs:
            started = clock()
            prediction = run.forecaster.process(tick, lineage, now_us)
            run.seconds += clock() - started
            run.ticks += 1
            run.forecaster.model_events.clear()
            symbol = run.symbols.get(tick.symbol)
            if symbol is None:
                symbol = run.symbols[tick.symbol] = _SymbolRun()
            _score_tick(
                symbol,
                tick,
                prediction.predicted_return_bps,
                prediction.predicted_price,
                every_tick or prediction.status == READY,
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
    scores = run.scores
    scores.count_tick(flagged)
    log_price = math.log(tick.price)
    if run.pending is not None and run.last_log_price is not None:
        # As in the features: a difference of logs cannot overflow or reach log(0) as a ratio can.
        scores.add_target(1e4 * (log_price - run.last_log_price), run.pending, flagged)
        if scores.scored % checkpoint_every == 0:
            run.series.append(scores.skill_point(tick.event_time))
    run.last_log_price = log_price
    run.last_time = tick.event_time
    if not ready:
        run.pending = None
    elif math.isfinite(forecast) and math.isfinite(predicted_price):
        run.pending = forecast
    else:
        scores.non_finite += 1
        run.pending = 0.0


def _report(run: _ModelRun) -> ModelReport:
    names = sorted(run.symbols)
    series: dict[str, list[SkillPoint]] = {}
    for name in names:
        symbol = run.symbols[name]
        points = list(symbol.series)
        # Close the curve at the symbol's last tick, so a short tail after a checkpoint is not lost.
        if symbol.scores.scored and (not points or points[-1].ticks != symbol.scores.ticks):
            points.append(symbol.scores.skill_point(symbol.last_time))
        series[name] = points
    return ModelReport(
        name=run.spec.name,
        version=run.spec.full_version,
        ticks_per_second=run.ticks / run.seconds if run.seconds > 0.0 else None,
        overall=pooled_score(OVERALL, [run.symbols[name].scores for name in names]),
        symbols=[run.symbols[name].scores.score(name) for name in names],
        series=series,
    )
