"""Score every horizon's forecasts and intervals offline, per model, symbol and horizon.

The forecaster learns from a bounded, spaced sample of its forecasts (:mod:`tickcast.predictor.delayed_labels`);
the evaluation scores *every* READY forecast it served, since a subscriber acts on every one. Offline there
is no memory bound, so each forecast waits here for its label: the first tick of the symbol at or after
``event_time + horizon`` (the k-th tick after, for ``kt``), target ``1e4·ln(p_label / p_t)`` bps.

* Labels whose tick is outlier-flagged are not scored (as the *clean* columns of
  :mod:`tickcast.evaluation.scoring`); forecasts pending when a gap opens (no trade for more than
  ``gap_ms``) are dropped, as the forecaster drops them.
* ``skill = 1 - RMSE(model) / RMSE(persistence)`` on the same forecasts; persistence forecasts 0 bps.
* Directional accuracy on labels with non-zero target and non-zero forecast.
* Interval coverage: share of scored labels inside the ``[lo, hi]`` served with the forecast; mean width
  is the mean of ``hi - lo``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from tickcast.common.records import Lineage, Tick
from tickcast.evaluation.replay_clock import ReplayClock
from tickcast.predictor.forecaster import FLAG_OUTLIER, Forecaster
from tickcast.predictor.horizons import Horizon
from tickcast.predictor.models import ModelSpec, model_spec

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["HorizonScore", "evaluate_horizons", "render_horizon_table"]


@dataclass(frozen=True, slots=True)
class HorizonScore:
    """One model on one symbol at one horizon (a row of ``tickcast evaluate --json``)."""

    model: str
    symbol: str
    horizon: str
    scored: int
    rmse_bps: float | None
    rmse_persistence_bps: float | None
    skill: float | None
    directional_accuracy: float | None
    interval_coverage: float | None
    nominal_coverage: float | None
    mean_width_bps: float | None
    dropped_at_gaps: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(slots=True)
class _Tally:
    scored: int = 0
    sse: float = 0.0
    sse_persistence: float = 0.0
    called: int = 0
    hits: int = 0
    with_interval: int = 0
    covered: int = 0
    width: float = 0.0
    dropped: int = 0
    nominal: float | None = None
    # (due, log_price, forecast, lo, hi) of each READY forecast waiting for its label.
    pending: deque[tuple[int, float, float, float | None, float | None]] = field(default_factory=deque)

    def add(self, target: float, forecast: float, lo: float | None, hi: float | None) -> None:
        self.scored += 1
        self.sse += (target - forecast) ** 2
        self.sse_persistence += target * target
        if target != 0.0 and forecast != 0.0:
            self.called += 1
            self.hits += (target > 0.0) == (forecast > 0.0)
        if lo is not None and hi is not None:
            self.with_interval += 1
            self.covered += lo <= target <= hi
            self.width += hi - lo

    def score(self, model: str, symbol: str, horizon: str) -> HorizonScore:
        rmse = math.sqrt(self.sse / self.scored) if self.scored else None
        rmse_p = math.sqrt(self.sse_persistence / self.scored) if self.scored else None
        return HorizonScore(
            model=model,
            symbol=symbol,
            horizon=horizon,
            scored=self.scored,
            rmse_bps=rmse,
            rmse_persistence_bps=rmse_p,
            skill=1.0 - rmse / rmse_p if rmse is not None and rmse_p else None,
            directional_accuracy=self.hits / self.called if self.called else None,
            interval_coverage=self.covered / self.with_interval if self.with_interval else None,
            nominal_coverage=self.nominal,
            mean_width_bps=self.width / self.with_interval if self.with_interval else None,
            dropped_at_gaps=self.dropped,
        )


def evaluate_horizons(
    ticks: Iterable[Tick],
    models: Sequence[str | ModelSpec],
    horizons: tuple[Horizon, ...],
    coverage: float | None = 0.9,
    gap_ms: int | None = 300_000,
) -> list[HorizonScore]:
    """Replay ``ticks`` through one ``Forecaster`` per model and score every horizon; rows sorted by model.

    >>> from tickcast.predictor.horizons import parse_horizons
    >>> ticks = [Tick("X", 100.0 + (i % 4) * 0.01, 1.0, i * 400) for i in range(200)]
    >>> rows = evaluate_horizons(ticks, ["persistence"], parse_horizons("1s"))
    >>> [(r.horizon, r.scored, r.skill) for r in rows]
    [('1s', 196, 0.0)]
    """
    specs = [model_spec(m) if isinstance(m, str) else m for m in models]
    runs = [Forecaster(spec, "evaluate", horizons=horizons, coverage=coverage, gap_ms=gap_ms) for spec in specs]
    tallies: list[dict[str, list[_Tally]]] = [{} for _ in specs]
    clocks = ReplayClock(gap_ms)
    for offset, tick in enumerate(ticks):
        symbol, now = tick.symbol, tick.event_time
        count, gap = clocks.advance(symbol, now)
        lineage = Lineage("replay", 0, offset, now)
        log_price = math.log(tick.price)
        for forecaster, by_symbol in zip(runs, tallies, strict=True):
            prediction = forecaster.process(tick, lineage, now * 1000)
            outlier = FLAG_OUTLIER in prediction.flags
            per_horizon = by_symbol.get(symbol)
            if per_horizon is None:
                per_horizon = by_symbol[symbol] = [_Tally(nominal=coverage or None) for _ in horizons]
            for horizon, tally, forecast in zip(horizons, per_horizon, prediction.forecasts, strict=True):
                clock = count if horizon.in_ticks else now
                pending = tally.pending
                if gap:
                    tally.dropped += len(pending)
                    pending.clear()
                while pending and pending[0][0] <= clock:
                    _, then, predicted, lo, hi = pending.popleft()
                    if not outlier:
                        target = 1e4 * (log_price - then)
                        tally.add(target, predicted, None if lo is None else lo, hi)
                if forecast.ready:
                    pending.append(
                        (
                            clock + horizon.amount,
                            log_price,
                            forecast.predicted_return_bps,
                            forecast.interval_lo_bps,
                            forecast.interval_hi_bps,
                        )
                    )
    return [
        tally.score(spec.name, symbol, horizon.label)
        for spec, by_symbol in zip(specs, tallies, strict=True)
        for symbol in sorted(by_symbol)
        for horizon, tally in zip(horizons, by_symbol[symbol], strict=True)
    ]


def render_horizon_table(scores: Sequence[HorizonScore]) -> Table:
    """The rows as a rich table (``tickcast evaluate --horizons``)."""
    from rich.table import Table

    def num(value: float | None, digits: int = 3) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    table = Table(title="Forecasts per horizon (skill = 1 - RMSE / RMSE of persistence)")
    for column in ("model", "symbol", "horizon", "scored", "RMSE", "RMSE pers.", "skill", "dir. acc.",
                   "coverage", "nominal", "mean width", "dropped at gaps"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("model", "symbol", "horizon") else "right")
    for s in scores:
        table.add_row(
            s.model, s.symbol, s.horizon, str(s.scored), num(s.rmse_bps), num(s.rmse_persistence_bps), num(s.skill),
            num(s.directional_accuracy), num(s.interval_coverage), num(s.nominal_coverage, 2),
            num(s.mean_width_bps, 2), str(s.dropped_at_gaps),
        )  # fmt: skip
    return table
