"""A deterministic synthetic tick feed with a learnable part.

Per symbol, log-returns follow an AR(1) process (so the next return is partly
predictable from the last one, like bid-ask bounce), with per-symbol volatility
and rare jumps that the AR state does not remember. Prices follow
``p_t = p_{t-1} · exp(r_t / 1e4)``: geometric Brownian motion plus that structure.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tickcast.common.records import Tick

_TICKERS = [
    "AAPL",
    "MSFT",
    "AMZN",
    "GOOG",
    "META",
    "NVDA",
    "TSLA",
    "JPM",
    "BAC",
    "WFC",
    "XOM",
    "CVX",
    "JNJ",
    "PFE",
    "KO",
    "PEP",
    "WMT",
    "HD",
    "DIS",
    "NFLX",
    "INTC",
    "AMD",
    "IBM",
    "AIG",
    "SPY",
    "QQQ",
]


def symbol_names(count: int) -> list[str]:
    """``count`` distinct symbols: familiar tickers first, then ``SYM0027``-style names.

    >>> symbol_names(3)
    ['AAPL', 'MSFT', 'AMZN']
    >>> symbol_names(30)[-1]
    'SYM0029'
    """
    return [_TICKERS[i] if i < len(_TICKERS) else f"SYM{i:04d}" for i in range(count)]


@dataclass(frozen=True, slots=True)
class SymbolDynamics:
    """Parameters of one symbol's return process (returns in bps per tick)."""

    symbol: str
    start_price: float
    sigma_bps: float
    ar_coefficient: float
    jump_probability: float
    jump_sigmas: float


def make_dynamics(symbols: list[str], seed: int) -> list[SymbolDynamics]:
    """Draw each symbol's parameters from ``seed``; |AR coefficient| in [0.3, 0.6] so the signal is real.

    >>> d = make_dynamics(["A", "B"], seed=1)
    >>> d == make_dynamics(["A", "B"], seed=1), all(0.3 <= abs(x.ar_coefficient) <= 0.6 for x in d)
    (True, True)
    """
    rng = random.Random(seed)  # nosec B311 # synthetic prices must be reproducible from a seed; nothing secret
    return [
        SymbolDynamics(
            symbol=symbol,
            start_price=round(rng.uniform(10.0, 500.0), 2),
            sigma_bps=rng.uniform(1.0, 8.0),
            ar_coefficient=rng.choice((-1.0, 1.0)) * rng.uniform(0.3, 0.6),
            jump_probability=0.001,
            jump_sigmas=15.0,
        )
        for symbol in symbols
    ]


class SyntheticFeed:
    """An endless, reproducible stream of ticks over many symbols.

    >>> feed = SyntheticFeed(symbols=symbol_names(2), seed=7, clock_ms=lambda: 1_700_000_000_000)
    >>> again = SyntheticFeed(symbols=symbol_names(2), seed=7, clock_ms=lambda: 1_700_000_000_000)
    >>> feed.take(4) == again.take(4)
    True
    """

    def __init__(self, symbols: list[str], seed: int, clock_ms: Callable[[], int]) -> None:
        self.dynamics = make_dynamics(symbols, seed)
        self._rng = random.Random(seed + 1)  # nosec B311 # as above
        self._clock_ms = clock_ms
        self._price = [d.start_price for d in self.dynamics]
        self._last_return = [0.0] * len(self.dynamics)

    def next_tick(self) -> Tick:
        index = self._rng.randrange(len(self.dynamics))
        d = self.dynamics[index]
        persistent = d.ar_coefficient * self._last_return[index] + d.sigma_bps * self._rng.gauss(0.0, 1.0)
        self._last_return[index] = persistent
        jump = 0.0
        if self._rng.random() < d.jump_probability:
            jump = self._rng.choice((-1.0, 1.0)) * d.jump_sigmas * d.sigma_bps
        self._price[index] *= math.exp((persistent + jump) / 1e4)
        size = float(self._rng.choice((1, 10, 50, 100, 100, 100, 200, 500)))
        return Tick(d.symbol, round(self._price[index], 4), size, self._clock_ms(), "SYN", None)

    def take(self, count: int) -> list[Tick]:
        return [self.next_tick() for _ in range(count)]

    def __iter__(self) -> Iterator[Tick]:
        while True:
            yield self.next_tick()
