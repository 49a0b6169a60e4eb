"""What the forecaster knows of each symbol's time when a tick arrives, replayed beside it by the evaluators.

Scoring a forecast needs the clock its horizon counts in (the symbol's tick count, or its event time) and
whether the tick opened a gap (the forecaster then drops every pending forecast). Both follow the rules
of :meth:`tickcast.predictor.forecaster.Forecaster.process`: a gap is more than ``gap_ms`` since the symbol's
latest event time, and a tick whose time went backwards does not move that latest time back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class SymbolTime(NamedTuple):
    """One tick's place in its symbol's history."""

    ticks: int
    """Ticks of the symbol so far, this one included (the clock of horizons counted in ticks)."""
    gap: bool
    """Whether the tick opened a gap: the forecaster drops what its symbol had pending."""


@dataclass
class ReplayClock:
    """Per symbol, the tick count and latest event time; :meth:`advance` folds in one tick.

    >>> clock = ReplayClock(gap_ms=1_000)
    >>> [clock.advance("A", t) for t in (0, 500, 400, 2_000)]  # doctest: +NORMALIZE_WHITESPACE
    [SymbolTime(ticks=1, gap=False), SymbolTime(ticks=2, gap=False), SymbolTime(ticks=3, gap=False),
     SymbolTime(ticks=4, gap=True)]
    >>> clock.advance("B", 10**9), ReplayClock(gap_ms=None).advance("A", 0)
    (SymbolTime(ticks=1, gap=False), SymbolTime(ticks=1, gap=False))
    """

    gap_ms: int | None
    _counts: dict[str, int] = field(default_factory=dict)
    _latest: dict[str, int] = field(default_factory=dict)

    def advance(self, symbol: str, event_time: int) -> SymbolTime:
        count = self._counts[symbol] = self._counts.get(symbol, 0) + 1
        previous = self._latest.get(symbol)
        gap = self.gap_ms is not None and previous is not None and event_time - previous > self.gap_ms
        self._latest[symbol] = event_time if previous is None else max(event_time, previous)
        return SymbolTime(count, gap)
