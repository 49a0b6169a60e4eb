"""What an evaluation reports: scores per model and symbol, skill over time, and their JSON and table forms.

Plain frozen dataclasses, so a report serialises as it is (:meth:`EvaluationReport.to_json`) and renders
as a rich table (:meth:`EvaluationReport.render_table`). How the numbers are made is in
:mod:`tickcast.evaluation.scoring`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["OVERALL", "EvaluationReport", "ModelReport", "Score", "SkillPoint"]

OVERALL = "ALL"
"""The pseudo-symbol under which sums over every symbol are reported."""

_COLUMNS = (
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
)


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
    >>> from tickcast.evaluation import evaluate
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
        >>> from tickcast.evaluation import evaluate
        >>> report = evaluate([Tick("X", 10.0 + (i % 2) / 100, 1.0, i) for i in range(6)], ["persistence"])
        >>> report.render_table().row_count
        2
        """
        # rich is imported here, not at module level: a report can be built and serialised without it.
        from rich.table import Table

        table = Table(title="Next-tick return forecasts (RMSE/MAE in bps; skill vs persistence)")
        for header in _COLUMNS:
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
