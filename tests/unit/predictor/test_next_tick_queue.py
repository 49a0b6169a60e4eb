"""NextTickQueue behaves as the general LabelQueue of horizon 1t: the same answers to any sequence of calls."""

from __future__ import annotations

import pickle
from copy import deepcopy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tickcast.predictor.delayed_labels import LabelQueue
from tickcast.predictor.horizon_state import HorizonState
from tickcast.predictor.models import build_model
from tickcast.predictor.next_tick_queue import NEXT_TICK, NextTickQueue, fitted, general

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)
features = st.fixed_dictionaries({"r1_bps": finite, "ewm_fast_bps": finite})
calls = st.one_of(
    st.tuples(st.just("tick"), st.integers(-3, 20), finite, features, finite, finite),
    # A forecast offered without labelling first, and labels taken (or not) between ticks: the forecaster never
    # does either, but the queue promises the general queue's semantics for any sequence.
    st.tuples(st.just("offer"), st.integers(-3, 20), finite, features, finite, finite),
    st.tuples(st.just("label"), st.booleans(), finite),
    st.tuples(st.just("challengers"), st.none() | st.dictionaries(st.sampled_from(["pa", "knn"]), finite)),
    st.tuples(st.just("drop_all")),
    st.tuples(st.just("read")),
)


def observed(queue: LabelQueue) -> Any:
    """Everything a caller can read of a queue, pending forecasts as their pickled state."""
    return (
        queue.depth,
        [entry.__getstate__() for entry in queue.pending],
        [queue.peek(i).__getstate__() for i in range(queue.depth)],
        queue.peek(-1).__getstate__() if queue.depth else None,
        [getattr(queue, name) for name in ("last_offered_ms", "enqueued", "skipped", "dropped_gap", "scored")],
        queue.unsampled,
        queue.__getstate__()[3:],
    )


@settings(max_examples=300)
@given(st.lists(calls, max_size=40))
def test_next_tick_queue_answers_as_the_general_queue(script: list[tuple[Any, ...]]) -> None:
    general_queue, fast = LabelQueue(NEXT_TICK), NextTickQueue(NEXT_TICK)
    count, time_ms = 0, 1000
    for call in script:
        kind = call[0]
        answers = []
        for queue in (general_queue, fast):
            if kind == "tick":  # as the forecaster: label what is due, learn, pop, then offer this tick's forecast
                _, step, log_price, served, forecast, half_width = call
                due = queue.due_count(time_ms + step, count + 1)
                labels = queue.labels(due, log_price, time_ms + step)
                queue.pop(due)
                offered = queue.offer(time_ms + step, count + 1, log_price, dict(served), forecast, half_width)
                answers.append((due, [label._asdict() for label in labels], offered))
            elif kind == "offer":
                _, step, log_price, served, forecast, half_width = call
                answers.append(queue.offer(time_ms + step, count + 1, log_price, dict(served), forecast, half_width))
            elif kind == "label":  # by a tick that does not count (the same tick count as the last one)
                _, take, log_price = call
                due = queue.due_count(time_ms, count) if take else 0
                labels = queue.labels(due, log_price, time_ms)
                queue.pop(due)
                answers.append((due, [label._asdict() for label in labels]))
            elif kind == "challengers":
                if queue.depth:
                    forecasts = None if call[1] is None else dict(call[1])
                    queue.attach_challengers(forecasts)
                    if forecasts is not None:
                        forecasts.clear()  # the caller's dict changes after: the queue kept its own
                answers.append(None)
            elif kind == "drop_all":
                answers.append(queue.drop_all())
            else:
                answers.append(observed(queue))
        assert answers[0] == answers[1], call
        if kind in ("tick", "offer"):
            count, time_ms = count + 1, time_ms + call[1]
    assert observed(general_queue) == observed(fast)
    assert pickle.dumps(general(fast)) == pickle.dumps(general_queue)


def test_a_snapshot_holds_the_general_queue_and_restores_the_next_tick_one() -> None:
    state = HorizonState.fresh(NEXT_TICK, build_model("linear"), coverage=None)
    assert type(state.queue) is NextTickQueue
    state.queue.offer(10, 1, 0.0, {"r1_bps": 1.5}, 0.25, 0.0)
    loaded = pickle.loads(pickle.dumps(state))
    assert b"NextTickQueue" not in pickle.dumps(state)  # a worker without the class reads it
    assert type(loaded.queue) is NextTickQueue
    assert observed(loaded.queue) == observed(state.queue)
    assert [label._asdict() for label in loaded.queue.labels(1, 1e-4, 20)] == [
        label._asdict() for label in state.queue.labels(1, 1e-4, 20)
    ]
    assert type(fitted(LabelQueue(NEXT_TICK))) is NextTickQueue


def test_a_next_tick_queue_copies_and_pickles_as_itself() -> None:
    queue = NextTickQueue(NEXT_TICK)
    queue.offer(10, 1, 0.0, {"r1_bps": 1.5}, 0.25, 0.0)
    for copy in (pickle.loads(pickle.dumps(queue)), deepcopy(queue)):
        assert type(copy) is NextTickQueue
        assert observed(copy) == observed(queue)
    # Restoring a state over a queue holding its one forecast replaces that forecast too.
    queue.__setstate__(LabelQueue(NEXT_TICK).__getstate__())
    assert (queue.depth, queue.pending) == (0, []), "the forecast held before the state was restored is still there"
