"""A symbol's first labels: a cold start, then serve the model with the lowest recent error at a few looks.

While a symbol has few labels there is no evidence for the configured champion either, and on real trades
those labels weigh a lot: a symbol's first trades (pre-market) move in large, sparse steps. On the sample
file the first 25 labels of AIG carry 34% of persistence's squared error over its first 13,000, so a
configured champion that forecasts from its first tick (mean reversion) lost 0.033 of AIG's whole-run skill
there, against linear scored on the same ticks. The Diebold-Mariano rule cannot help: it needs hundreds of
labels, and on SPY's heavy-tailed errors it left mean reversion serving for over 5,000 (measured).

So selection starts with a warm-up of ``warm_up_labels`` labels:

* **Cold start**, before the first look (``warm_up_first_look`` labels): the symbol is served as warming up
  (forecast 0, persistence's), as every learning model is before its own warm-up.
* **Looks** at ``first_look`` labels and then at every doubling: the model with the lowest mean squared
  error over the labels since the previous look (the latest half of all so far: learners improve, and the
  first labels judge them least fairly) is made champion if it beats the champion there by the rule's
  skill margin. No significance test: with so few labels there is nothing to test against, and serving the
  leader is what the evidence favours. The looks bound the changes (8 per symbol with the defaults), each
  an audited event with level 1 and no statistic.

After the last look, the conservative rule alone decides: no flapping after warm-up. Every model is scored
on the same (sampled) labels with its own forecast, the champion's included (not what was served while
cold); a model started during the warm-up (a fresh restart on drift) is compared once it has a whole window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


def warm_up_looks(first_look: int, labels: int) -> tuple[int, ...]:
    """The label counts at which the warm-up compares its models: doubling from ``first_look``, below ``labels``.

    >>> warm_up_looks(25, 5000)
    (25, 50, 100, 200, 400, 800, 1600, 3200)
    >>> warm_up_looks(0, 5000)  # no warm-up: the configured champion serves until the rule replaces it
    ()
    """
    looks: list[int] = []
    samples = first_look
    while 0 < samples < labels:
        looks.append(samples)
        samples *= 2
    return tuple(looks)


@dataclass(slots=True)
class WarmUp:
    """Squared errors of every model over a symbol's first labels, and who leads since the previous look.

    >>> warm = WarmUp(looks=(2, 4))
    >>> warm.add({"linear": 1.0, "pa": 4.0}), warm.add({"linear": 1.0, "pa": 0.0})
    (False, True)
    >>> warm.leader("pa", ["linear"], min_skill_margin=0.01)  # labels 1-2: linear's mean 1.0, pa's 2.0
    ('linear', 2.0, 1.0)
    >>> warm.add({"linear": 1.0, "pa": 0.0}), warm.add({"linear": 1.0, "pa": 0.5}), warm.finished
    (False, True, True)
    >>> warm.leader("linear", ["pa"], min_skill_margin=0.01)  # labels 3-4: pa's mean 0.25
    ('pa', 1.0, 0.25)
    """

    looks: tuple[int, ...]
    samples: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    since: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Each slot's (sum, count) at the previous look: the window is what was added since."""
    since_samples: int = 0

    @property
    def finished(self) -> bool:
        return not self.looks or self.samples >= self.looks[-1]

    def add(self, losses: dict[str, float]) -> bool:
        """Add one label's squared error of each model (by slot); is this label a look?"""
        self.samples += 1
        for slot, loss in losses.items():
            self.sums[slot] = self.sums.get(slot, 0.0) + loss
            self.counts[slot] = self.counts.get(slot, 0) + 1
        return self.samples in self.looks

    def window_mse(self, slot: str) -> float | None:
        """The slot's mean squared error since the previous look, or None if it missed labels there."""
        total, count = self.since.get(slot, (0.0, 0))
        labels = self.samples - self.since_samples
        if not labels or self.counts.get(slot, 0) - count != labels:
            return None
        return (self.sums[slot] - total) / labels

    def leader(
        self, champion: str, candidates: Iterable[str], min_skill_margin: float
    ) -> tuple[str, float, float] | None:
        """``(slot, champion_mse, leader_mse)`` if one of ``candidates`` beats the champion by the margin, else None.

        Called at a look, it starts the next window.
        """
        champion_mse = self.window_mse(champion)
        best: tuple[str, float] | None = None
        for slot in candidates:
            mse = self.window_mse(slot)
            if slot != champion and mse is not None and (best is None or mse < best[1]):
                best = (slot, mse)
        self.since = {slot: (self.sums[slot], self.counts[slot]) for slot in self.sums}
        self.since_samples = self.samples
        if champion_mse is None or champion_mse <= 0.0 or best is None:
            return None
        if 1.0 - best[1] / champion_mse < min_skill_margin:
            return None
        return best[0], champion_mse, best[1]
