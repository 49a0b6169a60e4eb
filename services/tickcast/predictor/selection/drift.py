"""Drift on the champion's residuals: River's ADWIN or Page-Hinkley, microseconds per label.

The detector watches the absolute error of what was served. A detection says the error's level
moved (up for Page-Hinkley; either way for ADWIN); KSWIN would test the whole distribution but
costs a window sort per tick. Thresholds were calibrated by replay (``tickcast evaluate --selection``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from river import drift

DetectorName = Literal["adwin", "page-hinkley", "off"]


class DriftDetector(Protocol):
    """River's drift interface: feed a value, then ask whether that value completed a detection."""

    def update(self, x: float) -> object: ...

    @property
    def drift_detected(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class DriftPolicy:
    """Which detector, how sensitive, and what a detection does (``TICKCAST_DRIFT_*``)."""

    detector: DetectorName = "adwin"
    adwin_delta: float = 0.0002
    ph_threshold: float = 200.0
    """Page-Hinkley's lambda, in the residual's unit (bps): the cumulative excess that counts as drift."""
    fresh_challenger: bool = True
    """On a detection, start a fresh model of the champion's recipe as a challenger."""


def new_detector(policy: DriftPolicy) -> DriftDetector | None:
    """A fresh detector as ``policy`` says, or None when drift detection is off.

    >>> detector = new_detector(DriftPolicy("page-hinkley", ph_threshold=5.0))
    >>> found = []
    >>> for t in range(400):
    ...     _ = detector.update(1.0 if t < 200 else 10.0)
    ...     if detector.drift_detected:
    ...         found.append(t)
    >>> found[0] >= 200
    True
    >>> new_detector(DriftPolicy("off")) is None
    True
    """
    if policy.detector == "adwin":
        return drift.ADWIN(delta=policy.adwin_delta)
    if policy.detector == "page-hinkley":
        return drift.PageHinkley(threshold=policy.ph_threshold, mode="up")
    return None
