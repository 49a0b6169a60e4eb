"""A forecast whose label arrived (:mod:`tickcast.predictor.delayed_labels` makes them): learned, then scored."""

from __future__ import annotations

from typing import NamedTuple

from tickcast.predictor.horizons import Horizon


class ScoredLabel(NamedTuple):
    """A forecast whose label arrived: what the model learns from and what its error is scored on."""

    horizon: Horizon
    features: dict[str, float]
    """The features at t, the ones the forecast was made from."""
    target_bps: float
    forecast_bps: float
    half_width_bps: float
    delay_ms: int
    """How long after the forecast's event time the label tick came (≥ the horizon for a time horizon)."""
    weight: int
    """Served forecasts this label stands for (a pending forecast's ``weight``): busy stretches weigh more."""
    challengers: dict[str, float] | None = None
    """The challengers' forecasts made with it (a pending forecast's ``challengers``)."""


#: Builds a :class:`ScoredLabel` from all its fields in order without the named tuple's Python ``__new__``.
new_scored_label = tuple.__new__
