"""``tickcast models``: champion per symbol, challengers' scores and the history of promotions."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from tickcast.cli.common import read_topic_once


def models(
    symbol: Annotated[str | None, typer.Option(help="Only this symbol, with its full history.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per symbol instead of tables.")] = False,
) -> None:
    """Which model serves each symbol, its challengers' scores and its promotions, from the model-events topic."""
    from rich.console import Console
    from rich.table import Table

    from tickcast.ops.models import fold, read_model_events

    events = read_topic_once("models", read_model_events)
    stories = fold(e for e in events if symbol is None or e.symbol == symbol)
    if as_json:
        for story in stories.values():
            typer.echo(json.dumps(asdict(story)))
        return
    console = Console()
    table = Table(title=f"champions ({len(stories)} symbols with events; others serve the configured model)")
    for column in ("symbol", "champion", "changes", "drifts", "challengers: samples, mse vs champion's, DM"):
        table.add_column(column)
    for story in sorted(stories.values(), key=lambda s: s.symbol):
        scores = "; ".join(
            f"{s.model}: n={s.samples}, {s.challenger_mse:.3g} vs {s.champion_mse:.3g}, {s.statistic:+.2f}"
            for s in story.standings
        )
        table.add_row(
            story.symbol, story.champion or "(configured)", str(len(story.changes)), str(story.drifts), scores
        )
    console.print(table)
    history = Table(title="history of promotions and demotions")
    for column in ("symbol", "kind", "from", "to", "samples", "DM", "p", "margin", "tick", "worker"):
        history.add_column(column)
    for story in sorted(stories.values(), key=lambda s: s.symbol):
        for e in story.changes if symbol is not None else story.changes[-5:]:
            history.add_row(e.symbol, e.kind, e.from_model, e.to_model, str(e.samples), f"{e.statistic:.2f}",
                            f"{e.p_value:.2g}", f"{e.skill_margin:.1%}",
                            f"{e.source_topic}:{e.source_partition}:{e.source_offset}", e.worker)  # fmt: skip
    console.print(history)
