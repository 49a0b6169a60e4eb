"""Settings a restored symbol shares with every other symbol, as the states a worker builds do (issue 15).

A state built by a worker refers to its settings' floats (a coverage, an interval's step, the fading factors
of its running statistics) where the code or the worker's settings hold them: one object for all symbols.
A snapshot loads its own copy of each (:mod:`tickcast.predictor.snapshot_pickling` shares a number within
one state, not with the worker), 24 bytes each per restored symbol. :func:`share_settings` swaps them for
one object per value, the same for every restored symbol.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tickcast.predictor.features import SymbolFeatures
from tickcast.predictor.horizon_state import HorizonState

#: One float object per setting value met so far (a handful: settings, not statistics).
_SETTINGS: dict[float, float] = {}


def shared_setting(value: float) -> float:
    """The one float object equal to ``value`` that every restored symbol's settings refer to.

    >>> shared_setting(float("0.25")) is shared_setting(float("0.25"))
    True
    """
    return _SETTINGS.setdefault(value, value)


def share_settings(horizons: Iterable[HorizonState], features: SymbolFeatures) -> None:
    """Point a restored state's settings at the shared objects: the intervals' coverage and step, and the fading
    factor of each horizon's error and of the features' running statistics (their values do not change)."""
    for horizon in horizons:
        _share_fading_factor(horizon.abs_error)
        interval = horizon.interval
        if interval is not None:
            interval.coverage, interval.step = shared_setting(interval.coverage), shared_setting(interval.step)
    for name in ("ewm_fast", "ewm_slow", "variance", "move_size"):
        _share_fading_factor(getattr(features, name, None))  # an older snapshot's features may lack one


def _share_fading_factor(statistic: Any) -> None:
    # River's statistics keep their factor twice: in Rust, used, and as this attribute, read for their name.
    factor = getattr(statistic, "fading_factor", None)
    if type(factor) is float:
        statistic.fading_factor = shared_setting(factor)
