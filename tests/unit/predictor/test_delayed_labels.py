"""The pending-label queue: bounded whatever the tick rate, labels are the first tick at or after t + h."""

from __future__ import annotations

import gc
import itertools
import sys
from array import array

from hypothesis import given
from hypothesis import strategies as st

from tickcast.predictor.delayed_labels import PICKLED_FIELDS, LabelQueue, PendingForecast
from tickcast.predictor.horizons import Horizon

gaps_ms = st.lists(st.integers(0, 700), min_size=1, max_size=400)


@given(gaps_ms, st.sampled_from([500, 1000, 10_000]), st.integers(1, 16))
def test_the_queue_stays_bounded_and_labels_each_forecast_with_the_first_tick_at_or_after_its_target(
    gaps: list[int], horizon_ms: int, capacity: int
) -> None:
    queue = LabelQueue(Horizon(horizon_ms), capacity)
    times = list(itertools.accumulate(gaps))
    offered: dict[int, int] = {}  # forecast's tick index -> its event time
    labelled: dict[int, int] = {}  # forecast's tick index -> label tick index
    for index, now in enumerate(times):
        due = queue.due_count(now, index)
        for position in range(due):
            entry = queue.peek(position)
            scored = queue.label(entry, float(index), now, queue.horizon)
            labelled[int(entry.features["index"])] = index
            assert scored.delay_ms >= horizon_ms
        queue.pop(due)
        if queue.offer(now, index, 0.0, {"index": float(index)}, 0.0, 0.0):
            offered[index] = now
        assert len(queue.pending) <= capacity
    assert queue.enqueued + queue.skipped == len(times)
    for forecast, label in labelled.items():
        target = offered[forecast] + horizon_ms
        assert times[label] >= target
        assert label == forecast + 1 or times[label - 1] < target, "a later tick than the first was the label"
    # Every enqueued forecast whose target passed before the last tick was labelled: none is lost.
    waiting = {int(e.features["index"]) for e in queue.pending}
    assert set(offered) == set(labelled) | waiting


def test_enqueued_forecasts_are_spaced_by_the_horizon_over_the_capacity() -> None:
    queue = LabelQueue(Horizon(60_000), capacity=8)
    for now in range(0, 60_000, 10):  # 100 ticks a second for a minute
        queue.offer(now, 0, 0.0, {}, 0.0, 0.0)
    assert queue.enqueued == 8 and queue.skipped == 6000 - 8
    assert [e.made_at_ms for e in queue.pending] == list(range(0, 60_000, 7500))


def test_a_tick_horizon_keeps_every_tick_and_is_labelled_k_ticks_later() -> None:
    queue = LabelQueue(Horizon(3, in_ticks=True), capacity=3)
    for count in range(1, 4):
        assert queue.offer(0, count, float(count), {}, 0.0, 0.0)
    assert queue.due_count(0, 3) == 0 and queue.due_count(0, 4) == 1


def test_a_gap_drops_everything_pending_and_counts_it() -> None:
    queue = LabelQueue(Horizon(1000), capacity=4)
    for now in (0, 300, 600):
        queue.offer(now, 0, 0.0, {}, 0.0, 0.0)
    assert queue.drop_all() == 3 and queue.dropped_gap == 3 and not queue.pending
    assert queue.offer(601, 0, 0.0, {}, 0.0, 0.0), "spacing starts over after a gap"


def test_a_pending_forecast_pickled_in_the_previous_layout_restores_the_same_values() -> None:
    # Before the times, weight and challengers joined the array: (due, made_at_ms, weight, feature names,
    # array of log price, forecast, half-width and features, challengers dict or None).
    previous = [61_000, 1_000, 3, ("r1_bps", "ewm_fast_bps"), array("d", [4.5, 0.25, 2.0, 1.5, -0.5]), {"pa": 0.5}]
    entry = PendingForecast.__new__(PendingForecast)
    entry.__setstate__(previous)
    assert (entry.due, entry.made_at_ms, entry.weight, entry.log_price, entry.forecast_bps) == (
        61_000,
        1_000,
        3,
        4.5,
        0.25,
    )
    assert (entry.half_width_bps, entry.features, entry.challengers) == (
        2.0,
        {"r1_bps": 1.5, "ewm_fast_bps": -0.5},
        {"pa": 0.5},
    )
    # And it pickles in that same layout, so a worker of either kind reads the other's snapshots.
    assert entry.__getstate__() == previous
    assert sys.getsizeof(entry.numbers) == sys.getsizeof(array("d", [0.0] * 9))  # exact size, no room to grow


def test_a_pending_forecast_keeps_every_number_in_one_array_and_no_dict() -> None:
    queue = LabelQueue(Horizon(1000))
    queue.offer(1_381_152_600_123, 1, 5.1, {"r1_bps": 1.5}, 0.25, 2.0)
    entry = queue.pending[0]
    entry.challengers = {"linear~fresh": -0.75}
    held = {id(value) for value in gc.get_referents(entry)}
    assert held == {id(PendingForecast), id(entry.feature_names), id(entry.numbers), id(entry.challenger_slots)}
    label = queue.label(entry, 5.1, 1_381_152_601_200, queue.horizon)
    assert (label.delay_ms, label.weight, label.challengers) == (1077, 1, {"linear~fresh": -0.75})
    assert type(label.delay_ms) is int and type(label.weight) is int and entry.due == 1_381_152_601_123


def test_a_queue_pickles_its_pending_forecasts_as_a_list_of_entries_as_before() -> None:
    queue = LabelQueue(Horizon(1000), capacity=4)
    for now in (0, 300, 600):
        queue.offer(now, 1, 0.5, {"r1_bps": float(now)}, 0.1, 1.0)
    queue.attach_challengers({"linear~fresh": 0.2})
    values = queue.__getstate__()
    entries = values[PICKLED_FIELDS.index("pending")]
    assert type(entries) is list and [type(entry) for entry in entries] == [PendingForecast] * 3
    assert [entry.challengers for entry in entries] == [None, None, {"linear~fresh": 0.2}]
    restored = LabelQueue.__new__(LabelQueue)
    restored.__setstate__(values)
    assert [(e.due, e.features, e.challengers) for e in restored.pending] == [
        (e.due, e.features, e.challengers) for e in queue.pending
    ]
    assert restored.due_count(1300, 9) == queue.due_count(1300, 9) == 2


@given(
    st.lists(st.integers(0, 400), min_size=1, max_size=60),
    st.sampled_from([Horizon(1000), Horizon(2, in_ticks=True)]),
    st.lists(st.floats(-1e3, 1e3), min_size=0, max_size=4),
    st.booleans(),
)
def test_the_labels_of_due_forecasts_are_those_of_each_entry_peeked_and_labelled(
    gaps: list[int], horizon: Horizon, values: list[float], challenge: bool
) -> None:
    # labels() reads the packed numbers in place, on every tick: it must give what label(peek(i)) gives.
    queue = LabelQueue(horizon, capacity=4)
    for index, now in enumerate(itertools.accumulate(gaps)):
        due = queue.due_count(now, index)
        expected = [queue.label(queue.peek(i), float(index), now, horizon) for i in range(due)]
        assert queue.labels(due, float(index), now) == expected
        queue.pop(due)
        features = {f"f{k}": value + index for k, value in enumerate(values)}
        if queue.offer(now, index, float(index) / 2, features, -float(index), 0.5) and challenge:
            queue.attach_challengers({"pa": float(index), "linear~fresh": -1.0})
    everything = queue.depth
    assert queue.labels(everything, 1.0, 10**9) == [queue.label(e, 1.0, 10**9, horizon) for e in queue.pending]
