"""How commands that read a tick file (``produce file``, ``evaluate``) name its columns and report its bad rows.

Shared options live here rather than in either command module, so command modules never import each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tickcast.cli.common import fail

if TYPE_CHECKING:
    from tickcast.common.records import Tick
    from tickcast.producer.columns import ColumnMapping
    from tickcast.producer.row_errors import ReplaySummary, RowError

TickFile = Annotated[Path, typer.Argument(help="CSV file, plain or gzip.")]
TimeCol = Annotated[str, typer.Option(help="Column of the event time.")]
SymbolCol = Annotated[str, typer.Option(help="Column of the symbol.")]
PriceCol = Annotated[str, typer.Option(help="Column of the price.")]
SizeCol = Annotated[str | None, typer.Option(help="Column of the size; omit for none.")]
VenueCol = Annotated[str | None, typer.Option(help="Column of the venue code.")]
ConditionCol = Annotated[str | None, typer.Option(help="Column of the trade condition code.")]
ConstantSymbol = Annotated[str | None, typer.Option(help="Constant symbol, for files of one instrument.")]
TimeFormat = Annotated[str, typer.Option(help="iso, epoch_s, epoch_ms, epoch_us, or a strptime pattern.")]
TimeZone = Annotated[str, typer.Option(help="IANA zone of naive times, e.g. America/New_York.")]

#: Bad rows printed one by one; after these only the tally grows, so a broken file cannot flood the terminal.
SHOWN_BAD_ROWS = 20


def column_mapping(
    time_col: str, symbol_col: str, price_col: str, size_col: str | None, venue_col: str | None,
    condition_col: str | None, symbol: str | None, time_format: str, timezone: str,
) -> ColumnMapping:  # fmt: skip
    """The mapping the options describe; an impossible one (e.g. an unknown zone) is a one-line usage error.

    >>> column_mapping("ts", "sym", "px", None, None, None, None, "iso", "UTC").symbol
    'sym'
    >>> column_mapping("ts", "sym", "px", None, None, None, "AAPL", "iso", "UTC").symbol is None
    True
    """
    from tickcast.producer.columns import ColumnMapping

    try:
        return ColumnMapping(
            time=time_col, symbol=None if symbol else symbol_col, price=price_col, size=size_col,
            venue=venue_col, condition=condition_col, constant_symbol=symbol, time_format=time_format,
            timezone=timezone,
        )  # fmt: skip
    except ValueError as exc:
        fail(str(exc))


def report_bad_rows(rows: Iterator[Tick | RowError], summary: ReplaySummary, stop_at_first: bool) -> Iterator[Tick]:
    """Pass ticks through; print each bad row on stderr (the first few, then only a count) and tally it."""
    from tickcast.producer.row_errors import RowError

    for row in rows:
        if isinstance(row, RowError):
            summary.record_error(row)
            if sum(summary.skipped.values()) <= SHOWN_BAD_ROWS:
                typer.echo(f"tickcast: bad row: {row}", err=True)
            if stop_at_first:
                return
            continue
        yield row
