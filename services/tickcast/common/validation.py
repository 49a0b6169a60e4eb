"""The tick contract's rules beyond Avro types, shared by producers (before sending) and workers.

Policy (also in the README):

=======================  ===========================================
rejected (dead letter)   symbol not matching ``SYMBOL_PATTERN``; price NaN, inf, 0 or negative;
                         size NaN, inf or negative; event time more than ``max_future_ms`` ahead
                         of the clock, or before ``min_event_time_ms`` (1990-01-01)
accepted                 same-timestamp trades (real separate fills); after-hours trades
accepted with a flag     per-symbol time going backwards (``time_regressed``, decided by the worker,
                         which knows the symbol's last time); price jumps beyond the outlier guard
                         (``outlier``, kept out of learning)
=======================  ===========================================
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from tickcast.common.errors import Reason, Rejected
from tickcast.common.records import Tick

#: Use with ``fullmatch``: under ``match``, ``$`` also matches before a trailing newline, so "SPY\n" would pass.
SYMBOL_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9._:/-]{0,31}")


@dataclass(frozen=True, slots=True)
class TickLimits:
    """Bounds a tick must respect; ``max_future_ms`` tolerates producer clock skew."""

    max_future_ms: int = 5 * 60 * 1000
    min_event_time_ms: int = 631_152_000_000  # 1990-01-01T00:00:00Z


def validate_tick(tick: Tick, now_ms: int, limits: TickLimits = TickLimits()) -> Tick:
    """Return the tick if it honours the contract, else raise :class:`Rejected` naming the field and value.

    >>> validate_tick(Tick("SPY", 1.0, 0.0, 1_381_152_600_000), now_ms=1_381_152_600_000).symbol
    'SPY'
    >>> validate_tick(Tick("SPY", float("nan"), 1.0, 0), now_ms=0)
    Traceback (most recent call last):
    ...
    tickcast.common.errors.Rejected: bad_price: price must be a finite number > 0, got nan (symbol 'SPY')
    >>> validate_tick(Tick("SPY\\n", 1.0, 0.0, 1_381_152_600_000), now_ms=1_381_152_600_000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tickcast.common.errors.Rejected: bad_symbol: symbol 'SPY\\n' does not match ...
    """
    if not SYMBOL_PATTERN.fullmatch(tick.symbol):
        raise Rejected(
            Reason.BAD_SYMBOL,
            f"symbol {tick.symbol[:64]!r} does not match {SYMBOL_PATTERN.pattern} (upper case, at most 32 chars)",
        )
    price = tick.price
    if not (math.isfinite(price) and price > 0.0):
        raise Rejected(Reason.BAD_PRICE, f"price must be a finite number > 0, got {price!r} (symbol {tick.symbol!r})")
    size = tick.size
    if not (math.isfinite(size) and size >= 0.0):
        raise Rejected(Reason.BAD_SIZE, f"size must be a finite number >= 0, got {size!r} (symbol {tick.symbol!r})")
    if tick.event_time > now_ms + limits.max_future_ms:
        ahead_s = (tick.event_time - now_ms) / 1000
        raise Rejected(
            Reason.FUTURE_TIME,
            f"event_time {tick.event_time} is {ahead_s:.0f}s ahead of the clock "
            f"(limit {limits.max_future_ms // 1000}s; symbol {tick.symbol!r})",
        )
    if tick.event_time < limits.min_event_time_ms:
        raise Rejected(
            Reason.ANCIENT_TIME,
            f"event_time {tick.event_time} is before {limits.min_event_time_ms} (1990-01-01; symbol {tick.symbol!r})",
        )
    return tick
