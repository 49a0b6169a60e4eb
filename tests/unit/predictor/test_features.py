"""SymbolFeatures reads River's statistics through their Rust cores: the same numbers as River's own methods.

The reference below is the features' arithmetic written with River's public ``update`` and ``get`` only, so a
River upgrade that renames a core (see ``RIVER_CORES``) or makes its methods more than a pass-through fails here.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from river import stats

from tickcast.predictor.features import (
    MAX_RETURN_BPS,
    MIN_TICKS_FOR_OUTLIERS,
    OUTLIER_SIGMAS,
    RIVER_CORES,
    SIGMA_FLOOR_BPS,
    SymbolFeatures,
    clip,
)


class PublicApiFeatures:
    """The same features, computed through River's public methods only."""

    def __init__(self) -> None:
        self.fast, self.slow = stats.EWMean(fading_factor=0.3), stats.EWMean(fading_factor=0.05)
        self.variance, self.move_size = stats.EWVar(fading_factor=0.02), stats.EWMean(fading_factor=0.02)
        self.last_log: float | None = None
        self.lag1 = self.last_nonzero = 0.0
        self.ticks = 0

    def scale(self) -> float:
        sigma = max(math.sqrt(max(self.variance.get(), 0.0)), SIGMA_FLOOR_BPS)
        return max(sigma, self.move_size.get())

    def update(self, price: float) -> tuple[float | None, dict[str, float], float]:
        log_price, raw = math.log(price), None
        if self.last_log is not None:
            raw = 1e4 * (log_price - self.last_log)
            limit = MAX_RETURN_BPS
            if self.ticks + 1 > MIN_TICKS_FOR_OUTLIERS:
                limit = min(limit, OUTLIER_SIGMAS * self.scale())
            clipped = max(-limit, min(limit, raw))
            self.lag1 = clipped
            if clipped != 0.0:
                self.last_nonzero = clipped
                self.move_size.update(abs(clipped))
            for stat in (self.fast, self.slow, self.variance):
                stat.update(clipped)
        self.last_log, self.ticks = log_price, self.ticks + 1
        features = {
            "r1_bps": self.lag1,
            "last_nonzero_bps": self.last_nonzero,
            "ewm_fast_bps": self.fast.get(),
            "ewm_slow_bps": self.slow.get(),
        }
        return raw, features, self.scale()


def test_every_statistic_has_the_core_named() -> None:
    for kind, core in RIVER_CORES.items():
        assert hasattr(kind(fading_factor=0.5), core), f"River's {kind.__name__} has no {core}"


@settings(max_examples=200)
@given(st.lists(st.floats(min_value=0.01, max_value=1e6), min_size=1, max_size=80))
def test_features_equal_rivers_public_api_bit_for_bit(prices: list[float]) -> None:
    ours, reference = SymbolFeatures(), PublicApiFeatures()
    for i, price in enumerate(prices):
        update = ours.update(price, i)
        raw, features, scale = reference.update(price)
        assert (update.return_bps, update.features, ours.scale_bps()) == (raw, features, scale)


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(min_value=0.0, allow_infinity=True))
def test_clip_is_max_of_min_bit_for_bit(value: float, limit: float) -> None:
    # clip spells out max(-limit, min(limit, value)) on the hot path: the same float, sign of zero and NaN included.
    assert repr(clip(value, limit)) == repr(max(-limit, min(limit, value)))


def flat_history(ticks: int) -> SymbolFeatures:
    """A symbol after ``ticks`` prices alternating by one basis point: a scale of about 1 bps."""
    features = SymbolFeatures()
    for i in range(ticks):
        features.update(100.0 if i % 2 == 0 else 100.0 * math.exp(1e-4), i)
    return features


def test_the_band_is_trusted_only_after_min_ticks_of_history() -> None:
    # 50 bps: far beyond 6 scale units of ~1 bps, within MAX_RETURN_BPS. Flagged once the scale has enough history.
    move = 100.0 * math.exp(50e-4)
    early = flat_history(MIN_TICKS_FOR_OUTLIERS - 1).assess(move)
    assert (early.limit_bps, early.is_outlier) == (MAX_RETURN_BPS, False), (
        f"with {MIN_TICKS_FOR_OUTLIERS - 1} ticks of history the band is not trusted yet: {early}"
    )
    trusted = flat_history(MIN_TICKS_FOR_OUTLIERS).assess(move)
    assert trusted.limit_bps < 10.0 and trusted.is_outlier, (
        f"with {MIN_TICKS_FOR_OUTLIERS} ticks of history the band applies: {trusted}"
    )


def test_a_fall_beyond_the_band_is_an_outlier_and_clipped_to_it() -> None:
    features = SymbolFeatures()
    features.update(100.0, 0)
    update = features.update(50.0, 1)  # -6931 bps: a bad print on the way down
    assert update.is_outlier, f"a fall of {update.return_bps} bps is not flagged"
    assert update.clipped_return_bps == -MAX_RETURN_BPS, f"the fall is clipped to {update.clipped_return_bps}"
    assert update.features["r1_bps"] == -MAX_RETURN_BPS


def test_a_gap_forgets_every_short_horizon_feature() -> None:
    features = flat_history(10)
    features.update(101.0, 10)
    features.reset_after_gap()
    first = features.update(120.0, 10**8)
    assert first.features == {"r1_bps": 0.0, "last_nonzero_bps": 0.0, "ewm_fast_bps": 0.0, "ewm_slow_bps": 0.0}, (
        f"the features after a gap still carry the moves before it: {first.features}"
    )


def test_a_wide_band_never_lets_a_return_beyond_max_return_bps_through() -> None:
    features = SymbolFeatures()
    for i in range(2 * MIN_TICKS_FOR_OUTLIERS):
        features.update(100.0 if i % 2 == 0 else 200.0, i)  # moves of 6931 bps, clipped: a scale of ~1000 bps
    assert OUTLIER_SIGMAS * features.scale_bps() > 3 * MAX_RETURN_BPS, "the history did not widen the band"
    assessed = features.assess(features.last_price * math.exp(0.2))  # 2000 bps
    assert (assessed.limit_bps, assessed.is_outlier) == (MAX_RETURN_BPS, True), (
        f"a band of {OUTLIER_SIGMAS * features.scale_bps():.0f} bps let a 2000 bps return through: {assessed}"
    )
