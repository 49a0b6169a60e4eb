"""Replay trades from a CSV file (plain or gzip) as validated :class:`Tick` records, optionally paced.

:func:`read_ticks` turns each data row into a ``Tick`` or a :class:`RowError`; it never raises for a bad
row, so one malformed line cannot stop a multi-million-row replay. :func:`paced` spaces ticks out in
(optionally accelerated) event time. Which columns to read is a :class:`~tickcast.producer.columns.ColumnMapping`;
what can go wrong, and the :class:`ReplaySummary` of a run, are in :mod:`tickcast.producer.row_errors`.
"""

from __future__ import annotations

import csv
import gzip
import math
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from tickcast.common.errors import Reason, Rejected, RowReason
from tickcast.common.records import Tick
from tickcast.common.validation import validate_tick
from tickcast.producer.columns import ColumnMapping, epoch_unit_hint, symbol_text, time_parser
from tickcast.producer.row_errors import ReplayError, RowError

# ColumnMapping and the row/file errors are re-exported: a replay's callers need them together.

_GZIP_MAGIC = b"\x1f\x8b"


def _open_text(path: Path) -> IO[str]:
    """Open as text, gunzipping when the content (not the name) says gzip."""
    with path.open("rb") as raw:
        magic = raw.read(2)
    # utf-8-sig drops a BOM that would otherwise glue itself to the first header name;
    # errors="replace" because a decode error inside a buffered read cannot be tied to one row.
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="")
    return path.open("r", encoding="utf-8-sig", errors="replace", newline="")


def _column_indices(path: Path, header: list[str], mapping: ColumnMapping) -> dict[str, int]:
    names = [name.strip() for name in header]
    wanted = {
        "time": mapping.time,
        "price": mapping.price,
        "symbol": None if mapping.constant_symbol is not None else mapping.symbol,
        "size": mapping.size,
        "venue": mapping.venue,
        "condition": mapping.condition,
    }
    missing = [col for col in wanted.values() if col is not None and col not in names]
    if missing:
        looks_binary = any("\ufffd" in name or "\x00" in name for name in names)
        present = ", ".join(repr(n[:40]) for n in names[:30]) + (", ..." if len(names) > 30 else "")
        hint = " (it does not look like a CSV text file)" if looks_binary else ""
        wanted_text = ", ".join(map(repr, missing))
        raise ReplayError(f"{path}: header lacks column(s) {wanted_text}{hint}; columns present: {present}")
    duplicated = sorted({col for col in wanted.values() if col is not None and names.count(col) > 1})
    if duplicated:
        raise ReplayError(f"{path}: header names column(s) {', '.join(map(repr, duplicated))} more than once")
    return {field_: names.index(col) for field_, col in wanted.items() if col is not None}


def _read_header(path: Path, reader: Iterator[list[str]]) -> list[str]:
    for row in reader:
        if row:
            return row
    raise ReplayError(f"{path}: file is empty, expected a CSV header line")


def read_ticks(path: str | Path, mapping: ColumnMapping, now_ms: int | None = None) -> Iterator[Tick | RowError]:
    """Stream the file's rows as validated ``Tick``s, or a ``RowError`` for each row that is not one.

    The file and its header are checked before this returns, so a missing file or column raises
    :class:`ReplayError` at once; afterwards only a read failure (such as a truncated gzip stream) raises it.
    ``now_ms`` (default: the wall clock at this call) bounds event times from above, as in
    :func:`~tickcast.common.validation.validate_tick`. Blank lines are skipped but counted in line numbers.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d, "ticks.csv")
    ...     _ = p.write_text("ts_et,symbol,price,size\\n2013-10-07T09:30:00,spy ,167.41,100\\n"
    ...                      "2013-10-07T09:30:01,SPY,abc,100\\n")
    ...     tick, err = read_ticks(p, ColumnMapping(timezone="America/New_York"))
    >>> tick
    Tick(symbol='SPY', price=167.41, size=100.0, event_time=1381152600000, venue=None, condition=None)
    >>> err.line, err.column, err.value, err.reason
    (3, 'price', 'abc', <RowReason.BAD_NUMBER: 'bad_number'>)
    """
    path = Path(path)
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    try:
        with _open_text(path) as handle:
            indices = _column_indices(path, _read_header(path, csv.reader(handle)), mapping)
    except FileNotFoundError as exc:
        raise ReplayError(f"{path}: no such file") from exc
    except (OSError, EOFError, zlib.error, csv.Error) as exc:
        raise ReplayError(f"{path}: cannot read as CSV: {exc}") from exc
    return _rows(path, mapping, indices, now_ms)


def _rows(path: Path, mapping: ColumnMapping, indices: dict[str, int], now_ms: int) -> Iterator[Tick | RowError]:
    name = str(path)
    parse_time, time_expected = time_parser(mapping)
    constant_symbol = symbol_text(mapping.constant_symbol) if mapping.constant_symbol is not None else None
    i_time = indices["time"]
    i_price = indices["price"]
    i_symbol = indices.get("symbol", -1)
    i_size = indices.get("size", -1)
    i_venue = indices.get("venue", -1)
    i_condition = indices.get("condition", -1)
    needed = max(indices.values()) + 1
    column_of = {index: col for col, index in _mapped_names(mapping, indices).items()}
    reason_column = {
        Reason.BAD_SYMBOL: (mapping.symbol if constant_symbol is None else None, i_symbol),
        Reason.BAD_PRICE: (mapping.price, i_price),
        Reason.BAD_SIZE: (mapping.size, i_size),
        Reason.FUTURE_TIME: (mapping.time, i_time),
        Reason.ANCIENT_TIME: (mapping.time, i_time),
    }

    def problem(line: int, index: int, row: list[str], reason: RowReason, message: str) -> RowError:
        text = row[index]
        if not text.strip():
            return RowError(name, line, column_of[index], text, RowReason.MISSING_VALUE, "empty cell")
        return RowError(name, line, column_of[index], text, reason, message)

    last_line = 1
    # Trades arrive in bursts sharing one timestamp (about half the rows of the sample file),
    # so remembering the last parse skips the costliest step for those rows.
    last_time_text = ""
    last_time = 0
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            width = len(_read_header(path, reader))
            last_line = reader.line_num
            while True:
                try:
                    for row in reader:
                        # line_num is where the record ended; a quoted field may have spanned several lines.
                        line = last_line + 1
                        last_line = reader.line_num
                        if len(row) < needed:
                            if row:
                                yield _short_row(name, line, last_line, row, indices, column_of)
                            continue
                        if len(row) > width and any(cell.strip() for cell in row[width:]):
                            # Cells are read by position: one surplus cell (a price written "1,234.50") shifts
                            # every value after it into the wrong field. Trailing empty cells shift nothing.
                            message = f"row has {len(row)} cells, the header has {width} (an unquoted comma?)"
                            yield RowError(name, line, None, None, RowReason.BAD_CSV, message)
                            continue
                        time_text = row[i_time]
                        if time_text == last_time_text:
                            event_time = last_time
                        else:
                            try:
                                event_time = parse_time(time_text)
                            except (ValueError, ArithmeticError, TypeError):
                                yield problem(line, i_time, row, RowReason.BAD_TIME, f"not {time_expected}")
                                continue
                            last_time_text = time_text
                            last_time = event_time
                        try:
                            price = float(row[i_price])
                        except ValueError:
                            yield problem(line, i_price, row, RowReason.BAD_NUMBER, "not a number")
                            continue
                        if i_size >= 0:
                            try:
                                size = float(row[i_size])
                            except ValueError:
                                yield problem(line, i_size, row, RowReason.BAD_NUMBER, "not a number")
                                continue
                        else:
                            size = 0.0
                        if constant_symbol is None:
                            symbol = row[i_symbol].strip()
                            if symbol.isascii():  # symbol_text, inlined on the hot path
                                symbol = symbol.upper()
                            if not symbol:
                                yield problem(line, i_symbol, row, RowReason.MISSING_VALUE, "empty cell")
                                continue
                        else:
                            symbol = constant_symbol
                        tick = Tick(
                            symbol,
                            price,
                            size,
                            event_time,
                            (row[i_venue].strip() or None) if i_venue >= 0 else None,
                            (row[i_condition].strip() or None) if i_condition >= 0 else None,
                        )
                        try:
                            validate_tick(tick, now_ms)
                        except Rejected as exc:
                            column, index = reason_column.get(exc.reason, (None, -1))
                            value = row[index] if index >= 0 else None
                            message = exc.message
                            if index == i_time:  # an epoch time in the wrong unit is the usual cause
                                message += epoch_unit_hint(row[i_time], mapping.time_format, now_ms)
                            yield RowError(name, line, column, value, exc.reason, message)
                            continue
                        yield tick
                    return
                except csv.Error as exc:
                    # The reader resumes at the next line: one malformed record costs one row, not the file.
                    yield RowError(name, last_line + 1, None, None, RowReason.BAD_CSV, f"unreadable CSV: {exc}")
                    last_line = reader.line_num
    except (OSError, EOFError, zlib.error) as exc:
        raise ReplayError(f"{path}: read failed after line {last_line}: {exc}") from exc


def _short_row(
    name: str, line: int, end: int, row: list[str], indices: dict[str, int], column_of: dict[int, str]
) -> RowError:
    index = min(i for i in indices.values() if i >= len(row))
    column = column_of[index]
    message = f"row has {len(row)} cell(s), column {column!r} is cell {index + 1}"
    if end > line:
        # A quoted cell ran on past its line: the rows it swallowed are named here, or they would vanish unsaid.
        message += f"; lines {line}-{end} were read as one row (an unclosed quote?)"
    return RowError(name, line, column, None, RowReason.MISSING_COLUMN, message)


def _mapped_names(mapping: ColumnMapping, indices: dict[str, int]) -> dict[str, int]:
    names = {
        "time": mapping.time,
        "price": mapping.price,
        "symbol": mapping.symbol,
        "size": mapping.size,
        "venue": mapping.venue,
        "condition": mapping.condition,
    }
    return {names[field_] or field_: index for field_, index in indices.items()}


def paced(
    items: Iterable[Tick],
    speed: float | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> Iterator[Tick]:
    """Yield ticks spaced by their event-time gaps divided by ``speed`` (``None`` or 0: no waiting).

    Each tick comes no earlier than ``(event_time - first event_time) / 1000 / speed`` seconds after the
    first one was handled (the consumer asked for the second); delays are measured from that start, so slow
    consumers do not accumulate drift, and a tick whose event time goes backwards is yielded at once.

    >>> now = [0.0]
    >>> ticks = [Tick("SPY", 1.0, 1.0, t) for t in (1_000, 3_000, 2_000)]
    >>> out = paced(ticks, 2.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    >>> [(t.event_time, now[0]) for t in out]
    [(1000, 0.0), (3000, 1.0), (2000, 1.0)]
    """
    if speed is not None and not (speed >= 0.0 and math.isfinite(speed)):
        raise ValueError(f"speed must be None or a finite number >= 0, got {speed!r}")
    return _paced(items, speed, clock, sleep)


def _paced(
    items: Iterable[Tick], speed: float | None, clock: Callable[[], float], sleep: Callable[[float], object]
) -> Iterator[Tick]:
    if not speed:
        yield from items
        return
    first_event: int | None = None
    started = 0.0
    for tick in items:
        if first_event is None:
            first_event = tick.event_time
            yield tick
            # The clock starts once the first tick was handled: sending it may wait for a new producer's
            # warm-up, which must not make the next ticks late and send them in a burst.
            started = clock()
            continue
        delay = started + (tick.event_time - first_event) / 1000.0 / speed - clock()
        if delay > 0.0:
            sleep(delay)
        yield tick
