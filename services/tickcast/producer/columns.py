"""How a tick file's columns map to tick fields, and how its time column is read into epoch milliseconds.

:class:`ColumnMapping` names the columns; :func:`time_parser` turns it into the function the replay
calls on every row's time cell (the hot path, so it is built once per file).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tickcast.common.validation import SYMBOL_PATTERN, TickLimits

__all__ = ["TIME_FORMATS", "ColumnMapping", "TimeParser", "symbol_text", "time_parser"]

_EPOCH_FORMATS = {"epoch_s": 1000, "epoch_ms": 1, "epoch_us": -1000}  # >0 multiply, <0 floor-divide
TIME_FORMATS = ("iso", *_EPOCH_FORMATS)
"""The named time formats; any other ``time_format`` is a ``strptime`` pattern."""
_NAIVE_EPOCH = datetime(1970, 1, 1)
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_ZERO = timedelta(0)
# Every field distinct and aware, so any directive strptime knows writes something it reads back.
_PATTERN_PROBE = datetime(2001, 2, 3, 4, 5, 6, 7008, tzinfo=UTC)
# Far beyond any plausible epoch value (1e20 us is year 5138); bounds Decimal work on hostile input.
_MAX_EPOCH_DIGITS = 20


@dataclass(frozen=True)
class ColumnMapping:
    """Which CSV columns hold which tick field, and how to read the time column.

    ``time_format`` is ``iso``, ``epoch_s``, ``epoch_ms``, ``epoch_us`` or a ``strptime`` pattern.
    ``timezone`` applies to naive times only; times carrying an offset keep it.

    >>> ColumnMapping(timezone="America/New_York", venue="exchange").venue
    'exchange'
    >>> ColumnMapping(symbol=None)
    Traceback (most recent call last):
    ...
    ValueError: ColumnMapping needs a symbol column or a constant_symbol
    """

    time: str = "ts_et"
    symbol: str | None = "symbol"
    price: str = "price"
    size: str | None = "size"
    venue: str | None = None
    condition: str | None = None
    constant_symbol: str | None = None
    time_format: str = "iso"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.constant_symbol is None and not self.symbol:
            raise ValueError("ColumnMapping needs a symbol column or a constant_symbol")
        constant = self.constant_symbol
        if constant is not None and not SYMBOL_PATTERN.fullmatch(symbol_text(constant)):
            # Fail once here rather than rejecting every row of the file as bad_symbol.
            raise ValueError(f"constant_symbol {constant!r} does not match {SYMBOL_PATTERN.pattern} upper-cased")
        if self.time_format not in TIME_FORMATS and "%" not in self.time_format:
            raise ValueError(
                f"time_format {self.time_format!r} is not one of {', '.join(TIME_FORMATS)} "
                "nor a strptime pattern containing '%'"
            )
        if self.time_format not in TIME_FORMATS:
            _check_strptime_pattern(self.time_format)
        _zone(self.timezone)

    def tz(self) -> tzinfo:
        """The time zone object applied to naive times (``ZoneInfo`` caches it per name).

        >>> ColumnMapping(timezone="America/New_York").tz()
        zoneinfo.ZoneInfo(key='America/New_York')
        """
        return _zone(self.timezone)


def symbol_text(cell: str) -> str:
    """A symbol cell as the contract reads it: stripped, and upper-cased only if ASCII.

    ``str.upper`` maps U+0131 (dotless i) to "I" and U+FB01 (the ligature fi) to "FI": a non-ASCII symbol
    would become another instrument's instead of failing as bad_symbol.

    >>> symbol_text(" spy "), symbol_text("\\u0131bm") == "\\u0131bm"
    ('SPY', True)
    """
    stripped = cell.strip()
    return stripped.upper() if stripped.isascii() else stripped


def _check_strptime_pattern(fmt: str) -> None:
    """Refuse a pattern ``strptime`` cannot read at all (``%Q``, a stray ``%``, ``%G`` without ``%V``).

    strptime says so only when it is given a time, so without this every row of the file would be a bad_time.
    A time written with the pattern must read back with it; strftime passes unknown directives through.
    """
    try:
        datetime.strptime(_PATTERN_PROBE.strftime(fmt), fmt)
    except ValueError as exc:
        raise ValueError(f"time_format {fmt!r} (--time-format) is not a pattern strptime can read: {exc}") from None


def _zone(name: str) -> tzinfo:
    # The fixed UTC object needs no tz database, so the default works even where tzdata is missing.
    if name in ("UTC", "utc", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'America/New_York'") from exc


TimeParser = Callable[[str], int]


def time_parser(mapping: ColumnMapping) -> tuple[TimeParser, str]:
    """A function from cell text to epoch ms (raising ValueError), and what it expects, for messages."""
    zone = mapping.tz()
    fmt = mapping.time_format
    utcoffset = zone.utcoffset
    fromisoformat = datetime.fromisoformat

    if fmt == "iso":

        def parse_iso(text: str) -> int:
            dt = fromisoformat(text.strip())
            if dt.tzinfo is None:
                # tz.utcoffset(naive) is ~40x cheaper than dt.replace(tzinfo=tz); this loop is the hot path.
                return (dt - _NAIVE_EPOCH - (utcoffset(dt) or _ZERO)) // _ONE_MS
            return (dt - _UTC_EPOCH) // _ONE_MS

        return parse_iso, "an ISO-8601 time"

    if fmt in _EPOCH_FORMATS:
        scale = _EPOCH_FORMATS[fmt]

        def parse_epoch(text: str) -> int:
            try:
                whole = int(text)
            except ValueError:
                whole = None
            if whole is not None:
                return whole * scale if scale > 0 else whole // -scale
            try:
                # Decimal, not float: "1381152600.123" seconds must give exactly ...600123 ms.
                exact = Decimal(text.strip())
            except InvalidOperation:
                raise ValueError(text) from None
            # adjusted() needs no arithmetic, so it cannot overflow on values like "1e999999999".
            if not exact.is_finite() or exact.adjusted() > _MAX_EPOCH_DIGITS:
                raise ValueError(text)
            return math.floor(exact * scale if scale > 0 else exact / -scale)

        return parse_epoch, f"a number ({fmt.replace('_', ' ')})"

    def parse_pattern(text: str) -> int:
        dt = datetime.strptime(text.strip(), fmt)
        if dt.tzinfo is None:
            return (dt - _NAIVE_EPOCH - (utcoffset(dt) or _ZERO)) // _ONE_MS
        return (dt - _UTC_EPOCH) // _ONE_MS

    return parse_pattern, f"a time matching {fmt!r}"


def epoch_unit_hint(cell: str, time_format: str, now_ms: int) -> str:
    """For an epoch time refused as too old or in the future: the other unit that reads it as a plausible time.

    >>> epoch_unit_hint("1381152600000", "epoch_s", 2_000_000_000_000)
    '; as epoch_ms it is 2013-10-07T13:30:00Z: --time-format epoch_ms?'
    >>> epoch_unit_hint("1381152600000", "iso", 2_000_000_000_000)
    ''
    """
    if time_format not in _EPOCH_FORMATS:
        return ""
    earliest = TickLimits().min_event_time_ms
    for other in _EPOCH_FORMATS:
        if other == time_format:
            continue
        try:
            ms = time_parser(ColumnMapping(time_format=other))[0](cell)
        except (ValueError, ArithmeticError):
            continue
        if earliest <= ms <= now_ms:
            when = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return f"; as {other} it is {when}: --time-format {other}?"
    return ""
