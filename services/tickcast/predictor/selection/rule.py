"""The promotion rule: is a challenger better than the champion by more than noise? A pure function.

Both models forecast the same targets; ``d_t = e_champion_t² - e_challenger_t²`` is the loss
difference of one scored label (positive: the challenger did better). The Diebold-Mariano
statistic is ``mean(d) / sqrt(LRV / n)``, where LRV is the long-run variance of ``d``.
Squared errors of tick returns are autocorrelated (volatility clusters), so LRV is the
Newey-West estimate (Bartlett weights over ``hac_lags`` autocovariances) rather than the plain
variance, which would overstate the evidence. Every sum it needs is kept running, so a label
costs O(hac_lags), a constant.

Looking after every label would be thousands of tests, and with equal models one of them passes by luck
sooner or later (12 of 100 runs of 3,000 labels did, measured). So the test is group-sequential: a pair is
looked at only when its sample count reaches ``min_samples`` times a power of two (300, 600, 1,200, ...,
within ``window``), each look at ``level / looks`` (Bonferroni), so a window of equal models passes with
probability at most ``level``. After ``window`` labels the sums restart: over N labels, at most
``level * ceil(N / window)`` false promotions are expected per pair.

A challenger is promoted when all of these hold:

* its scored labels reach a look (at least ``min_samples``);
* the one-sided DM test rejects "no better" at the look's level (normal approximation);
* its skill margin, ``1 - mse_challenger / mse_champion``, is at least ``min_skill_margin``;
* at least ``cooldown`` labels went by since the symbol's champion last changed.

A pair whose challenger is significantly *worse* ends its round (reason ``worse``): the caller restarts
its sums, so evidence from an old regime does not have to be outweighed label by label after the market
changes. Demotion is the same rule with the roles as they are: the former champion, now a challenger,
takes its place back only by passing it. The margin keeps the rule from flapping between two
models that are equal: with enough samples their estimated margin tends to 0, below any margin.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any

#: Where :class:`PairedLosses` keeps its sums in its one array (the lag products, head and ring follow).
_SUM, _SUM_SQ, _CHAMPION, _CHALLENGER, _CROSS = range(5)


@dataclass(frozen=True, slots=True)
class PromotionPolicy:
    """Thresholds of the rule (``TICKCAST_PROMOTION_*``)."""

    min_samples: int = 300
    level: float = 0.01
    """One-sided significance level of the DM test, per challenger."""
    min_skill_margin: float = 0.01
    """Least relative MSE improvement worth a change (0.01: 1% lower squared error)."""
    cooldown: int = 500
    """Labels after a change of champion during which no other change is made."""
    hac_lags: int = 5
    window: int = 5_000
    """A pair's sums restart after this many scored labels, so old regimes stop weighing on the test."""
    warm_up_first_look: int = 25
    """First look of a symbol's warm-up (see :mod:`tickcast.predictor.selection.warm_up`); 0: no warm-up."""
    warm_up_labels: int = 5_000
    """The warm-up looks double from ``warm_up_first_look`` while below this many labels."""

    @property
    def looks(self) -> int:
        """How many times a pair is tested within a window.

        >>> PromotionPolicy(min_samples=300, window=5000).looks
        5
        """
        count, samples = 0, self.min_samples
        while samples <= self.window:
            count, samples = count + 1, samples * 2
        return max(count, 1)

    def is_look(self, samples: int) -> bool:
        """Is a pair with this many scored labels due for a test?

        >>> policy = PromotionPolicy(min_samples=300)
        >>> [n for n in range(1, 5001) if policy.is_look(n)]
        [300, 600, 1200, 2400, 4800]
        """
        if samples < self.min_samples or samples % self.min_samples:
            return False
        multiple = samples // self.min_samples
        return multiple & (multiple - 1) == 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """The rule's answer for one pair, with its evidence."""

    promote: bool
    reason: str
    level: float
    """The level this look tested at (``policy.level / policy.looks``)."""
    samples: int
    statistic: float
    p_value: float
    champion_mse: float
    challenger_mse: float
    skill_margin: float


class PairedLosses:
    """Running sums of one (champion, challenger) pair's squared errors and of their differences.

    >>> pair = PairedLosses(hac_lags=2)
    >>> for champion_error, challenger_error in [(2.0, 1.0), (1.0, 1.0), (3.0, 1.0), (2.0, 0.0)]:
    ...     pair.update(champion_error**2, challenger_error**2)
    >>> pair.samples, pair.mean_difference, pair.champion_mse, pair.challenger_mse
    (4, 3.75, 4.5, 0.75)

    Every float lives in one ``array`` (one per challenger per symbol, so its size is memory per symbol:
    ~0.3 KB, where a deque, two lists and their float objects took ~1.5 KB). Pickled, it keeps the layout
    pairs had before (lists and a deque), so a worker of either kind reads the other's snapshots.
    """

    __slots__ = ("_sums", "hac_lags", "samples")

    def __init__(self, hac_lags: int = 5) -> None:
        self.hac_lags = hac_lags
        self.samples = 0
        self._sums = _zeros(hac_lags)
        """[sum d, sum d², sum champion loss, sum challenger loss, then per lag k = 1..hac_lags: sum over t of
        d_t * d_(t-k), then the first hac_lags differences (the autocovariances leave them out at one end),
        then the last hac_lags differences, a ring: sample t's at (t mod hac_lags) (left out at the other end)]."""

    def update(self, champion_loss: float, challenger_loss: float) -> None:
        sums, lags, n = self._sums, self.hac_lags, self.samples
        difference = champion_loss - challenger_loss
        if lags:
            ring = _CROSS + 2 * lags
            for lag in range(1, min(n, lags) + 1):  # the previous differences, newest first
                sums[_CROSS + lag - 1] += difference * sums[ring + (n - lag) % lags]
            if n < lags:
                sums[_CROSS + lags + n] = difference
            sums[ring + n % lags] = difference
        self.samples = n + 1
        sums[_SUM] += difference
        sums[_SUM_SQ] += difference * difference
        sums[_CHAMPION] += champion_loss
        sums[_CHALLENGER] += challenger_loss

    @property
    def mean_difference(self) -> float:
        return self._sums[_SUM] / self.samples if self.samples else 0.0

    @property
    def champion_mse(self) -> float:
        return self._sums[_CHAMPION] / self.samples if self.samples else 0.0

    @property
    def challenger_mse(self) -> float:
        return self._sums[_CHALLENGER] / self.samples if self.samples else 0.0

    def long_run_variance(self) -> float:
        """Newey-West (Bartlett) estimate of the long-run variance of the differences.

        >>> pair = PairedLosses(hac_lags=1)
        >>> for d in [1.0, -1.0, 1.0, -1.0]:
        ...     pair.update(d, 0.0)
        >>> round(pair.long_run_variance(), 6)  # alternating: the negative lag-1 autocovariance lowers it from 1
        0.25
        """
        n, lags, sums = self.samples, self.hac_lags, self._sums
        if n < 2:
            return 0.0
        total_sum = sums[_SUM]
        mean = total_sum / n
        variance = sums[_SUM_SQ] / n - mean * mean
        total = variance
        head, ring = _CROSS + lags, _CROSS + 2 * lags
        for lag in range(1, min(lags, n - 1) + 1):
            # Summed oldest first, as they were added: the same floats in the same order, the same result.
            head_sum = sum(sums[head : head + lag])
            tail_sum = sum(sums[ring + (n - back) % lags] for back in range(lag, 0, -1))
            autocovariance = (
                sums[_CROSS + lag - 1]
                - mean * (total_sum - head_sum)
                - mean * (total_sum - tail_sum)
                + (n - lag) * mean * mean
            ) / n
            total += 2.0 * (1.0 - lag / (lags + 1)) * autocovariance
        return max(total, 0.0)

    def statistic(self) -> float:
        """The Diebold-Mariano statistic (0 when the differences do not vary: nothing to tell them apart)."""
        variance = self.long_run_variance()
        if self.samples < 2 or variance <= 1e-12 * max(1.0, self._sums[_SUM_SQ] / self.samples):
            return 0.0
        return self.mean_difference / math.sqrt(variance / self.samples)

    def _differences(self) -> list[float]:
        """The last ``hac_lags`` differences, oldest first."""
        n, lags = self.samples, self.hac_lags
        ring = _CROSS + 2 * lags
        return [self._sums[ring + (n - back) % lags] for back in range(min(n, lags), 0, -1)]

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        sums, lags = self._sums, self.hac_lags
        head = sums[_CROSS + lags : _CROSS + lags + min(self.samples, lags)]
        return None, {
            "hac_lags": lags, "samples": self.samples, "_sum": sums[_SUM], "_sum_sq": sums[_SUM_SQ],
            "_champion": sums[_CHAMPION], "_challenger": sums[_CHALLENGER],
            "_cross": [0.0, *sums[_CROSS : _CROSS + lags]], "_head": list(head),
            "_tail": deque(self._differences(), maxlen=lags),
        }  # fmt: skip

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        slots = state[1]
        lags, tail = slots["hac_lags"], list(slots["_tail"])
        self.hac_lags, self.samples, self._sums = lags, slots["samples"], _zeros(lags)
        n, sums = self.samples, self._sums
        sums[_SUM], sums[_SUM_SQ] = slots["_sum"], slots["_sum_sq"]
        sums[_CHAMPION], sums[_CHALLENGER] = slots["_champion"], slots["_challenger"]
        for index, value in enumerate([*slots["_cross"][1:], *slots["_head"]]):
            sums[_CROSS + index] = value
        for back, value in enumerate(reversed(tail), start=1):
            sums[_CROSS + 2 * lags + (n - back) % lags] = value


def _zeros(hac_lags: int) -> array[float]:
    # Repeating makes an array of the exact size (one built from bytes or by appends keeps room to grow).
    return array("d", [0.0]) * (_CROSS + 3 * hac_lags)


def one_sided_p_value(statistic: float) -> float:
    """P(Z >= statistic) for a standard normal Z.

    >>> round(one_sided_p_value(0.0), 3), round(one_sided_p_value(2.326), 3)
    (0.5, 0.01)
    """
    return 0.5 * math.erfc(statistic / math.sqrt(2.0))


def judge(pair: PairedLosses, policy: PromotionPolicy, labels_since_change: int) -> Verdict:
    """Should the challenger of ``pair`` replace the champion now? Pure: reads, changes nothing.

    >>> policy = PromotionPolicy(min_samples=50, cooldown=0)
    >>> better = PairedLosses()
    >>> for t in range(200):
    ...     better.update(1.0 + (t % 3), 0.5 + (t % 2))
    >>> verdict = judge(better, policy, labels_since_change=1000)
    >>> verdict.promote, verdict.reason, round(verdict.skill_margin, 2)
    (True, 'better', 0.5)
    >>> judge(better, PromotionPolicy(min_samples=500), 1000).reason
    'too_few_samples'
    >>> judge(better, PromotionPolicy(min_samples=60), 1000).reason
    'between_looks'
    >>> judge(better, PromotionPolicy(min_samples=50, cooldown=5000), 1000).reason
    'cooling_down'
    >>> worse = PairedLosses()
    >>> for t in range(200):
    ...     worse.update(0.5 + (t % 2), 1.0 + (t % 3))
    >>> judge(worse, policy, 1000).reason
    'worse'
    """
    champion_mse, challenger_mse = pair.champion_mse, pair.challenger_mse
    margin = 1.0 - challenger_mse / champion_mse if champion_mse > 0.0 else 0.0
    level = policy.level / policy.looks
    if not policy.is_look(pair.samples):
        # No test between looks, so no statistic either: it is what costs (the Newey-West sums).
        reason = "too_few_samples" if pair.samples < policy.min_samples else "between_looks"
        return Verdict(False, reason, level, pair.samples, 0.0, 1.0, champion_mse, challenger_mse, margin)
    statistic = pair.statistic()
    p_value = one_sided_p_value(statistic)

    def verdict(promote: bool, reason: str) -> Verdict:
        return Verdict(promote, reason, level, pair.samples, statistic, p_value, champion_mse, challenger_mse, margin)

    if p_value >= 1.0 - level:
        return verdict(False, "worse")
    if labels_since_change < policy.cooldown:
        return verdict(False, "cooling_down")
    if p_value > level:
        return verdict(False, "not_significant")
    if margin < policy.min_skill_margin:
        return verdict(False, "margin_too_small")
    return verdict(True, "better")
