"""Per-symbol online features from a stream of prices, built on ``river.stats``.

Plain Python, no Kafka: :class:`SymbolFeatures` sees one price at a time and
returns the feature dict the model reads, plus the tick's log-return (the
target for the previous tick's features). Returns are in basis points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from river import stats

#: A return beyond this many running standard deviations is flagged as an outlier.
OUTLIER_SIGMAS = 6.0
#: Below this volatility (bps) the outlier test uses this floor, so a flat series does not flag 1-cent moves.
SIGMA_FLOOR_BPS = 1.0
#: Ticks of history before the volatility estimate is trusted for outlier flags.
MIN_TICKS_FOR_OUTLIERS = 30


@dataclass(frozen=True, slots=True)
class Update:
    """What one price did to a symbol's features."""

    return_bps: float | None
    """Log-return from the previous price, bps; None on a symbol's first tick."""
    clipped_return_bps: float | None
    """The same, clipped to ±OUTLIER_SIGMAS·sigma: what the features (and learning) see."""
    is_outlier: bool
    features: dict[str, float]


@dataclass(slots=True)
class SymbolFeatures:
    """Running state of one symbol.

    >>> f = SymbolFeatures()
    >>> f.update(100.0, 0).return_bps is None
    True
    >>> round(f.update(100.01, 1000).return_bps, 3)
    1.0
    >>> sorted(f.update(100.0, 2000).features)[:3]
    ['dt_log_s', 'ewm_fast_bps', 'ewm_slow_bps']
    """

    last_price: float | None = None
    last_time_ms: int | None = None
    ticks: int = 0
    lag1: float = 0.0
    lag2: float = 0.0
    lag3: float = 0.0
    last_nonzero: float = 0.0
    ewm_fast: stats.EWMean = field(default_factory=lambda: stats.EWMean(fading_factor=0.3))
    ewm_slow: stats.EWMean = field(default_factory=lambda: stats.EWMean(fading_factor=0.05))
    variance: stats.EWVar = field(default_factory=lambda: stats.EWVar(fading_factor=0.02))

    def sigma_bps(self) -> float:
        """Running standard deviation of (clipped) returns, with a floor.

        >>> SymbolFeatures().sigma_bps()
        1.0
        """
        return max(math.sqrt(max(self.variance.get(), 0.0)), SIGMA_FLOOR_BPS)

    def update(self, price: float, event_time_ms: int, size: float = 0.0) -> Update:
        """Fold one valid price (finite, > 0) into the state and return the features after it."""
        previous, previous_time = self.last_price, self.last_time_ms
        self.last_price, self.last_time_ms = price, event_time_ms
        self.ticks += 1
        if previous is None:
            return Update(None, None, False, self.features(0.0, size))
        raw = 1e4 * math.log(price / previous)
        limit = OUTLIER_SIGMAS * self.sigma_bps()
        warmed = self.ticks > MIN_TICKS_FOR_OUTLIERS
        is_outlier = warmed and abs(raw) > limit
        clipped = max(-limit, min(limit, raw)) if warmed else raw
        self.lag3, self.lag2, self.lag1 = self.lag2, self.lag1, clipped
        if clipped != 0.0:
            self.last_nonzero = clipped
        self.ewm_fast.update(clipped)
        self.ewm_slow.update(clipped)
        self.variance.update(clipped)
        dt_s = max(0.0, (event_time_ms - (previous_time or event_time_ms)) / 1000.0)
        return Update(raw, clipped, is_outlier, self.features(dt_s, size))

    def features(self, dt_s: float, size: float) -> dict[str, float]:
        sigma = self.sigma_bps()
        return {
            "r1_bps": self.lag1,
            "r2_bps": self.lag2,
            "r3_bps": self.lag3,
            "last_nonzero_bps": self.last_nonzero,
            "ewm_fast_bps": self.ewm_fast.get(),
            "ewm_slow_bps": self.ewm_slow.get(),
            "sigma_bps": sigma,
            "r1_over_sigma": self.lag1 / sigma,
            "dt_log_s": math.log1p(dt_s),
            "size_log": math.log1p(max(size, 0.0)),
        }
