"""Forecast horizons (``TICKCAST_HORIZONS``): how far ahead each prediction of a tick looks.

A horizon is either a span of event time (``500ms``, ``10s``, ``1m``) or a count of ticks (``5t``).
Its label is defined in :mod:`tickcast.predictor.delayed_labels`: for a time horizon h, the first tick
of the symbol at or after event time t + h; for k ticks, the k-th tick after t.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

#: Milliseconds per unit of a time horizon.
_TIME_UNITS = {"ms": 1, "s": 1000, "m": 60_000}
_SPELLING = re.compile(r"^\s*(\d+)\s*(ms|s|m|t)\s*$")
#: A tick horizon keeps every tick pending until its label (k entries), so it is capped.
MAX_TICK_HORIZON = 64
#: A time horizon beyond a day would only ever be dropped at the overnight gap.
MAX_TIME_HORIZON_MS = 86_400_000

DEFAULT_HORIZONS = "1s,10s,60s"


class BadHorizon(ValueError):
    """A horizon spelling that cannot be parsed or is out of range."""


@dataclass(frozen=True, slots=True)
class Horizon:
    """One horizon: ``amount`` milliseconds (``in_ticks`` False) or ``amount`` ticks (``in_ticks`` True)."""

    amount: int
    in_ticks: bool = False

    @property
    def label(self) -> str:
        """The canonical spelling, e.g. ``1s``, ``500ms``, ``5t``.

        >>> Horizon(60_000).label, Horizon(1500).label, Horizon(5, in_ticks=True).label
        ('60s', '1500ms', '5t')
        """
        # Interned: predictions carry it, and a restored one's copy loads interned (snapshot_pickling).
        if self.in_ticks:
            return sys.intern(f"{self.amount}t")
        return sys.intern(f"{self.amount // 1000}s" if self.amount % 1000 == 0 else f"{self.amount}ms")

    @property
    def horizon_ms(self) -> int:
        """The horizon in event-time ms; 0 for a tick horizon (its target time is not known in advance)."""
        return 0 if self.in_ticks else self.amount

    def __reduce__(self) -> tuple[object, tuple[str]]:
        # Loads as the loading worker's own object (parse_horizon shares them), not a copy per symbol: three
        # horizons and their ints are ~280 B of each restored state. Older workers have parse_horizon too.
        return parse_horizon, (self.label,)


#: One object per distinct horizon, shared by every state that holds it (frozen: sharing is safe). Horizons
#: come from settings and signed snapshots, so this stays small; the cap only bounds it against a surprise.
_CANONICAL: dict[Horizon, Horizon] = {}
_CANONICAL_CAP = 1024


def _canonical(horizon: Horizon) -> Horizon:
    if len(_CANONICAL) >= _CANONICAL_CAP:
        return _CANONICAL.get(horizon, horizon)
    return _CANONICAL.setdefault(horizon, horizon)


def parse_horizon(text: str) -> Horizon:
    """One horizon from its spelling; the same object for the same horizon, however spelt.

    >>> parse_horizon("1s") is parse_horizon(" 1000ms")
    True
    >>> parse_horizon("500ms"), parse_horizon("10s").amount, parse_horizon("1m").amount
    (Horizon(amount=500, in_ticks=False), 10000, 60000)
    >>> parse_horizon("3t")
    Horizon(amount=3, in_ticks=True)
    >>> parse_horizon("0s")
    Traceback (most recent call last):
    ...
    tickcast.predictor.horizons.BadHorizon: horizon '0s' must be > 0
    """
    match = _SPELLING.match(text)
    if match is None:
        raise BadHorizon(f"horizon {text!r} is not a number followed by ms, s, m or t (ticks)")
    amount, unit = int(match.group(1)), match.group(2)
    if amount <= 0:
        raise BadHorizon(f"horizon {text!r} must be > 0")
    if unit == "t":
        if amount > MAX_TICK_HORIZON:
            raise BadHorizon(f"horizon {text!r}: at most {MAX_TICK_HORIZON} ticks")
        return _canonical(Horizon(amount, in_ticks=True))
    ms = amount * _TIME_UNITS[unit]
    if ms > MAX_TIME_HORIZON_MS:
        raise BadHorizon(f"horizon {text!r}: at most one day")
    return _canonical(Horizon(ms))


def parse_horizons(text: str) -> tuple[Horizon, ...]:
    """A comma-separated list, shortest time horizon first (tick horizons before time ones), no duplicates.

    The first is the one the v1 fields of a prediction carry, so old readers get the shortest forecast.

    >>> [h.label for h in parse_horizons("60s, 1s,10s")]
    ['1s', '10s', '60s']
    >>> [h.label for h in parse_horizons("1s,1t")]
    ['1t', '1s']
    >>> parse_horizons("1s,1000ms")
    Traceback (most recent call last):
    ...
    tickcast.predictor.horizons.BadHorizon: horizons repeat: '1s,1000ms'
    """
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise BadHorizon("at least one horizon is needed")
    horizons = {parse_horizon(part) for part in parts}
    if len(horizons) != len(parts):
        raise BadHorizon(f"horizons repeat: {text!r}")
    return tuple(sorted(horizons, key=lambda h: (not h.in_ticks, h.amount)))


def signature(horizons: tuple[Horizon, ...]) -> str:
    """The horizons as one string, stored with a symbol's state to notice a restore under other horizons.

    Interned: a restored state's copy loads interned (``snapshot_pickling``), so it is the worker's one object.

    >>> signature(parse_horizons("1s,10s"))
    '1s,10s'
    """
    return sys.intern(",".join(h.label for h in horizons))
