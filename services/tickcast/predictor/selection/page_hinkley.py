"""River's Page-Hinkley test for a rise, with its few numbers in slots: ~0.3 KB per symbol instead of ~0.85 KB.

Every symbol with drift detection on keeps a detector, so its size is memory per symbol (issue 15). River's
``drift.PageHinkley`` keeps its settings per instance, a ``stats.Mean`` object, a bound method and the
decrease statistics that a rise-only test computes and never reads. :class:`RisingPageHinkley` keeps the
running mean, the cumulative increase and its minimum, and takes River's defaults for the other settings
from the class. The arithmetic is River's, operation for operation, so it detects on exactly the same
labels (the tests compare it with River's detector bit for bit).
"""

from __future__ import annotations


class RisingPageHinkley:
    """``river.drift.PageHinkley(threshold=threshold, mode="up")``, compact (module doc).

    >>> detector = RisingPageHinkley(threshold=5.0)
    >>> found = []
    >>> for t in range(400):
    ...     detector.update(1.0 if t < 200 else 10.0)
    ...     if detector.drift_detected:
    ...         found.append(t)
    >>> found[0]
    200
    """

    __slots__ = ("_count", "_mean", "_min_increase", "_sum_increase", "drift_detected", "threshold")

    #: River's defaults: labels before any detection, tolerated change, forgetting factor of the cumulative sum.
    min_instances = 30
    delta = 0.005
    alpha = 1 - 0.0001

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._reset()

    def _reset(self) -> None:
        self.drift_detected = False
        self._count = 0.0  # a float, as River's stats.Mean counts
        self._mean = 0.0
        self._sum_increase = 0.0
        self._min_increase = float("inf")

    def update(self, x: float) -> None:
        """Add one value; :attr:`drift_detected` then says whether it completed a rise beyond the threshold."""
        if self.drift_detected:
            self._reset()
        # stats.Mean.update with weight 1.0, as River writes it.
        self._count += 1.0
        self._mean += (1.0 / self._count) * (x - self._mean)
        deviation = x - self._mean
        self._sum_increase = self.alpha * self._sum_increase + deviation - self.delta
        if self._sum_increase < self._min_increase:
            self._min_increase = self._sum_increase
        if self._count >= self.min_instances:
            self.drift_detected = self._sum_increase - self._min_increase > self.threshold
