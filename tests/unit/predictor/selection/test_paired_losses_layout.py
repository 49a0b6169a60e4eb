"""PairedLosses keeps its sums in one array: bit-identical to the lists-and-deque layout it replaced, in both
directions of a snapshot, and a fraction of its memory."""

from __future__ import annotations

import gc
import math
import pickle  # nosec B403 # only what these tests pickled is loaded
import tracemalloc
from collections import deque
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tickcast.predictor.selection.rule import PairedLosses
from tickcast.predictor.snapshot_pickling import dumps


class ListsAndDeque:
    """The layout before (lists, a deque, float attributes), kept here as the reference to match bit for bit."""

    def __init__(self, hac_lags: int) -> None:
        self.hac_lags, self.samples = hac_lags, 0
        self._sum = self._sum_sq = self._champion = self._challenger = 0.0
        self._cross = [0.0] * (hac_lags + 1)
        self._head: list[float] = []
        self._tail: deque[float] = deque(maxlen=hac_lags)

    def update(self, champion_loss: float, challenger_loss: float) -> None:
        difference = champion_loss - challenger_loss
        for lag, previous in enumerate(reversed(self._tail), start=1):
            self._cross[lag] += difference * previous
        if len(self._head) < self.hac_lags:
            self._head.append(difference)
        self._tail.append(difference)
        self.samples += 1
        self._sum += difference
        self._sum_sq += difference * difference
        self._champion += champion_loss
        self._challenger += challenger_loss

    def long_run_variance(self) -> float:
        n = self.samples
        if n < 2:
            return 0.0
        mean = self._sum / n
        total = self._sum_sq / n - mean * mean
        tail = list(self._tail)
        for lag in range(1, min(self.hac_lags, n - 1) + 1):
            head_sum, tail_sum = sum(self._head[:lag]), sum(tail[-lag:])
            autocovariance = (
                self._cross[lag]
                - mean * (self._sum - head_sum)
                - mean * (self._sum - tail_sum)
                + (n - lag) * mean * mean
            ) / n
            total += 2.0 * (1.0 - lag / (self.hac_lags + 1)) * autocovariance
        return max(total, 0.0)

    def slots(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in vars(self)}


losses = st.floats(min_value=0.0, max_value=1e6, allow_nan=False) | st.sampled_from([0.0, 1e-300, 3.0])
pairs = st.lists(st.tuples(losses, losses), max_size=40)
lags = st.integers(min_value=0, max_value=7)


def fingerprint(pair: PairedLosses) -> tuple[Any, ...]:
    """Every number the rule reads, as exact bits (``hex``), so 'equal' means bit-identical."""
    floats = (pair.mean_difference, pair.champion_mse, pair.challenger_mse, pair.long_run_variance())
    return (pair.samples, *(value.hex() for value in floats), pair.statistic().hex())


@given(pairs, lags)
def test_every_number_is_bit_identical_to_the_lists_and_deque_layout(
    losses: list[tuple[float, float]], hac_lags: int
) -> None:
    pair, reference = PairedLosses(hac_lags), ListsAndDeque(hac_lags)
    for step, (champion, challenger) in enumerate(losses, start=1):
        pair.update(champion, challenger)
        reference.update(champion, challenger)
        assert pair.long_run_variance().hex() == reference.long_run_variance().hex(), step
        n = reference.samples
        assert pair.mean_difference.hex() == (reference._sum / n).hex()
        assert (pair.champion_mse.hex(), pair.challenger_mse.hex()) == (
            (reference._champion / n).hex(),
            (reference._challenger / n).hex(),
        )


@given(pairs, pairs, lags)
def test_a_snapshot_in_either_layout_carries_on_bit_identical(
    before: list[tuple[float, float]], after: list[tuple[float, float]], hac_lags: int
) -> None:
    pair, reference = PairedLosses(hac_lags), ListsAndDeque(hac_lags)
    for champion, challenger in before:
        pair.update(champion, challenger)
        reference.update(champion, challenger)
    # Pickled, a pair carries the older layout's slots (a worker from before reads it), with equal values.
    state = pair.__reduce_ex__(pickle.HIGHEST_PROTOCOL)[2]
    assert state[1] == reference.slots()
    # A snapshot from before (the older slots) loads into the new layout.
    older = PairedLosses.__new__(PairedLosses)
    older.__setstate__((None, reference.slots()))
    restored = [pickle.loads(dumps(pair)), pickle.loads(pickle.dumps(pair)), older]  # nosec B301
    for champion, challenger in after:
        pair.update(champion, challenger)
        for copy in restored:
            copy.update(champion, challenger)
    assert all(fingerprint(copy) == fingerprint(pair) for copy in restored)
    if pair.samples >= 2 and math.isfinite(pair.long_run_variance()):
        reference_after = ListsAndDeque(hac_lags)
        for champion, challenger in before + after:
            reference_after.update(champion, challenger)
        assert pair.long_run_variance().hex() == reference_after.long_run_variance().hex()


def restored_bytes(pair: object, copies: int = 50) -> float:
    """Bytes per copy of ``pair`` loaded from its snapshot pickle (averaged over ``copies``, all kept alive)."""
    data = dumps(pair)
    kept: list[object] = [None] * copies
    pickle.loads(data)  # nosec B301 # pickled just above; a first load warms caches up
    tracemalloc.start()
    try:
        # A full collection also empties the free lists, where the loads' temporary floats and lists wait.
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for index in range(copies):
            kept[index] = pickle.loads(data)  # nosec B301
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - before) / copies
    finally:
        tracemalloc.stop()


def test_a_pair_restored_from_its_snapshot_takes_under_700_bytes() -> None:
    pair, reference = PairedLosses(), ListsAndDeque(5)
    for t in range(1000):
        pair.update(1.0 + t % 7, 0.5 + t % 3)
        reference.update(1.0 + t % 7, 0.5 + t % 3)
    size = restored_bytes(pair)
    assert size < 700, size  # measured: ~530 (an empty slotted object alone: ~130)
    assert restored_bytes(reference) > 1_500  # the layout before
