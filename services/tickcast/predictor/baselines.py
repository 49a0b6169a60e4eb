"""Reference forecasts with River's regressor interface, so any model can be compared to them."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from river import base, stats


class Persistence(base.Regressor):
    """No change: the next return is 0 bps. MAE-optimal when most ticks do not move.

    >>> Persistence().predict_one({"r1_bps": 3.0})
    0.0
    """

    def learn_one(self, x: dict[Hashable, Any], y: Any) -> None:
        return None

    def predict_one(self, x: dict[Hashable, Any]) -> float:
        return 0.0


class EWMeanReturn(base.Regressor):
    """The exponentially weighted mean of past targets.

    >>> m = EWMeanReturn(fading_factor=0.5)
    >>> m.learn_one({}, 2.0); m.learn_one({}, 4.0)
    >>> m.predict_one({})
    3.0
    """

    def __init__(self, fading_factor: float = 0.05) -> None:
        self.fading_factor = fading_factor
        self._mean = stats.EWMean(fading_factor=fading_factor)

    def learn_one(self, x: dict[Hashable, Any], y: Any) -> None:
        self._mean.update(float(y))

    def predict_one(self, x: dict[Hashable, Any]) -> float:
        return float(self._mean.get())


class MeanReversion(base.Regressor):
    """A fixed rule: the next move undoes a share of the last non-zero move (bid-ask bounce).

    >>> MeanReversion(share=0.5).predict_one({"last_nonzero_bps": 2.0})
    -1.0
    """

    def __init__(self, share: float = 0.3) -> None:
        self.share = share

    def learn_one(self, x: dict[Hashable, Any], y: Any) -> None:
        return None

    def predict_one(self, x: dict[Hashable, Any]) -> float:
        return -self.share * float(x.get("last_nonzero_bps", 0.0))
