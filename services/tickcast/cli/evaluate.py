"""``tickcast evaluate``: score the worker's models offline on a tick file (no broker)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tickcast.cli.common import UserError, fail, user_errors
from tickcast.cli.tick_files import (
    ConstantSymbol,
    PriceCol,
    SizeCol,
    SymbolCol,
    TickFile,
    TimeCol,
    TimeFormat,
    TimeZone,
    column_mapping,
    report_bad_rows,
)


def positive_seconds(value: float) -> float:
    """A typer callback for a gap: finite and > 0, as ``TICKCAST_GAP_S`` must be for a worker.

    A gap of 0 or less makes every tick a gap and a NaN one cannot become milliseconds: the scores came out
    empty, or the command ended in a traceback.

    >>> positive_seconds(300.0)
    300.0
    """
    if not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"{value} is not a finite number of seconds > 0")
    return value


#: Piped output gets a table this wide instead of rich's 80-column default, so rows do not wrap in files.
PIPED_WIDTH = 180


def evaluate(
    path: TickFile,
    model: Annotated[
        list[str] | None, typer.Option(help="Model to score (repeatable); default: every registered model.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of cumulative skill over time per symbol.")] = None,
    limit: Annotated[int | None, typer.Option(min=0, help="Score at most this many ticks.")] = None,
    horizons: Annotated[
        str | None,
        typer.Option(
            help="Score these horizons instead of the next tick (as TICKCAST_HORIZONS, e.g. '1s,10s,60s'): "
            "skill, direction, interval coverage and width per symbol and horizon."
        ),
    ] = None,
    coverage: Annotated[float, typer.Option(help="Nominal interval coverage with --horizons (0: none).")] = 0.9,
    gap_s: Annotated[
        float, typer.Option(callback=positive_seconds, help="Gap after which features restart, with --horizons.")
    ] = 300.0,
    residuals: Annotated[
        Path | None,
        typer.Option(
            help="With --horizons: instead of scores, record the first model's interval-free residual streams "
            "to this .npz, to replay interval rules on (tickcast.evaluation.residual_streams)."
        ),
    ] = None,
    challenger: Annotated[
        list[str] | None,
        typer.Option(
            help="Also run per-symbol selection: the first --model as champion, these as challengers. Every "
            "run is then scored on every tick (a warming-up model's 0 too), so all compare on the same ticks."
        ),
    ] = None,
    drift: Annotated[
        bool, typer.Option("--drift", help="Instead of scores: drift alarms on the file and on a synthetic feed.")
    ] = False,
    time_col: TimeCol = "ts_et",
    symbol_col: SymbolCol = "symbol",
    price_col: PriceCol = "price",
    size_col: SizeCol = "size",
    symbol: ConstantSymbol = None,
    time_format: TimeFormat = "iso",
    timezone: TimeZone = "UTC",
) -> None:
    """Replay a tick file through the worker's own feature and model code (no broker) and score the forecasts.

    Per symbol and overall: RMSE, RMSE skill vs persistence, directional accuracy on non-zero moves, MAE,
    outlier share and ticks/s, for each model side by side with the baselines.
    """
    import itertools

    from rich.console import Console

    from tickcast.evaluation import evaluate as run_evaluation
    from tickcast.evaluation.plot import PlottingUnavailable, plot_skill
    from tickcast.predictor.models import MODELS
    from tickcast.predictor.selection.champion import SelectionConfig
    from tickcast.predictor.selection.drift import DriftPolicy
    from tickcast.producer.replay import read_ticks
    from tickcast.producer.row_errors import ReplayError, ReplaySummary

    names = model or list(MODELS)
    unknown = [name for name in [*names, *(challenger or [])] if name not in MODELS]
    if unknown:
        fail(f"unknown model(s) {', '.join(unknown)}; choose from: {', '.join(MODELS)}")
    mapping = column_mapping(time_col, symbol_col, price_col, size_col, None, None, symbol, time_format, timezone)
    summary = ReplaySummary()
    if horizons is not None:
        with user_errors():
            try:
                rows = read_ticks(path, mapping)  # a missing file or column raises here, not when rows are read
            except ReplayError as exc:
                raise UserError(str(exc)) from exc
        if residuals is not None:
            _record_residuals(rows, summary, names[0], horizons, gap_s, limit, residuals)
            return
        _evaluate_horizons(rows, summary, names, horizons, coverage, gap_s, limit, as_json)
        return
    with user_errors():
        try:
            good = report_bad_rows(read_ticks(path, mapping), summary, stop_at_first=False)
            ticks = itertools.islice(good, limit)
            if drift:
                _print_drift_calibration(list(ticks), names[0])
                return
            selections = [SelectionConfig(names[0], tuple(challenger), drift=DriftPolicy("off"))] if challenger else []
            report = run_evaluation(ticks, names, selections=selections, every_tick=bool(selections))
        except ReplayError as exc:
            raise UserError(str(exc)) from exc
        if as_json:
            typer.echo(report.to_json())
        else:
            Console(width=None if sys.stdout.isatty() else PIPED_WIDTH).print(report.render_table())
            if sum(summary.skipped.values()):
                typer.echo(f"skipped rows: {summary.line()}", err=True)
        if plot is not None:
            try:
                typer.echo(f"wrote {plot_skill(report, plot)}", err=True)
            except PlottingUnavailable as exc:
                # The scores are printed already; only the chart is missing, and the exit code says so.
                raise UserError(str(exc)) from exc


def _evaluate_horizons(
    rows: Any,
    summary: Any,
    names: list[str],
    horizons: str,
    coverage: float,
    gap_s: float,
    limit: int | None,
    as_json: bool,
) -> None:
    import itertools
    import json

    from tickcast.evaluation.horizon_scoring import evaluate_horizons, render_horizon_table
    from tickcast.predictor.horizons import BadHorizon, parse_horizons
    from tickcast.producer.row_errors import ReplayError

    try:
        parsed = parse_horizons(horizons)
    except BadHorizon as exc:
        fail(str(exc))
    if not 0.0 <= coverage < 1.0:
        fail(f"--coverage must be in [0, 1), got {coverage}")
    with user_errors():
        try:
            good = report_bad_rows(rows, summary, stop_at_first=False)
            scores = evaluate_horizons(
                itertools.islice(good, limit), names, parsed, coverage or None, round(gap_s * 1000)
            )
        except ReplayError as exc:
            raise UserError(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps({"rows": [score.to_dict() for score in scores]}, indent=2))
    else:
        from rich.console import Console

        Console(width=None if sys.stdout.isatty() else PIPED_WIDTH).print(render_horizon_table(scores))


def _record_residuals(
    rows: Any, summary: Any, name: str, horizons: str, gap_s: float, limit: int | None, out: Path
) -> None:
    import itertools

    from tickcast.evaluation.residual_streams import record_residual_streams, save_streams
    from tickcast.predictor.horizons import BadHorizon, parse_horizons
    from tickcast.predictor.models import model_spec
    from tickcast.producer.row_errors import ReplayError

    try:
        parsed = parse_horizons(horizons)
    except BadHorizon as exc:
        fail(str(exc))
    with user_errors():
        try:
            good = report_bad_rows(rows, summary, stop_at_first=False)
            streams = record_residual_streams(
                itertools.islice(good, limit), model_spec(name), parsed, round(gap_s * 1000)
            )
        except ReplayError as exc:
            raise UserError(str(exc)) from exc
    typer.echo(f"wrote {save_streams(streams, out)}: {len(streams)} streams", err=True)


def _print_drift_calibration(ticks: list[object], model: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from tickcast.common.records import Tick
    from tickcast.evaluation.drift_replay import real_alarms, synthetic_alarms
    from tickcast.predictor.selection.drift import DriftPolicy

    real = [t for t in ticks if isinstance(t, Tick)]
    table = Table(title=f"drift alarms on {model}'s absolute residuals")
    for column in ("detector", "alarms /10k labels (real)", "synthetic: detected", "median delay", "false /10k"):
        table.add_column(column)
    settings = [(f"adwin delta={d:g}", DriftPolicy("adwin", adwin_delta=d)) for d in (0.002, 0.0002, 0.00002)] + [
        (f"page-hinkley lambda={t:g}", DriftPolicy("page-hinkley", ph_threshold=t)) for t in (50.0, 200.0, 1000.0)
    ]
    for name, policy in settings:
        on_real, synthetic = real_alarms(real, model, policy, name), synthetic_alarms(model, policy, name)
        table.add_row(name, f"{on_real.alarms_per_10k:.2f}", f"{synthetic.detected}/{synthetic.change_points}",
                      "-" if synthetic.median_delay is None else f"{synthetic.median_delay:.0f}",
                      f"{synthetic.false_per_10k:.2f}")  # fmt: skip
    Console(width=None if sys.stdout.isatty() else PIPED_WIDTH).print(table)
