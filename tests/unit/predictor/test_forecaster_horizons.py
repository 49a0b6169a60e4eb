"""Horizons in the forecaster: labels without leakage, gaps, snapshots old and new, memory per symbol."""

from __future__ import annotations

import math
import pickle
import random
from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickcast.common.records import Lineage, Tick
from tickcast.predictor import snapshot_pickling
from tickcast.predictor.delayed_labels import PICKLED_FIELDS, LabelQueue, PendingForecast
from tickcast.predictor.forecaster import FLAG_AFTER_GAP, FLAG_TIME_REGRESSED, Forecaster, SymbolState
from tickcast.predictor.horizons import parse_horizons
from tickcast.predictor.models import ModelSpec, model_spec

HORIZONS = parse_horizons("1s,10s,60s")


class Spy:
    """A persistence model that records what it learns."""

    def __init__(self) -> None:
        self.learned: list[tuple[dict[str, float], float]] = []
        self.asked: list[dict[str, float]] = []

    def learn_one(self, x: dict[Any, Any], y: Any) -> None:
        self.learned.append((x, y))

    def predict_one(self, x: dict[Any, Any]) -> float:
        self.asked.append(x)
        return 0.0


def spying(horizons: str, gap_ms: int | None = None, capacity: int = 8) -> Forecaster:
    spec = ModelSpec("spy", "1", "records what it learns", Spy, warmup_ticks=0)
    return Forecaster(spec, "t", horizons=parse_horizons(horizons), coverage=0.9, gap_ms=gap_ms, capacity=capacity)


def feed(forecaster: Forecaster, ticks: list[tuple[int, float]], symbol: str = "SPY", start: int = 0) -> list[Any]:
    return [
        forecaster.process(Tick(symbol, price, 1.0, time), Lineage("t", 0, start + i, time), 0)
        for i, (time, price) in enumerate(ticks)
    ]


def walk(rng: random.Random, n: int, max_step_ms: int = 400) -> list[tuple[int, float]]:
    time, price, out = 0, 100.0, []
    for _ in range(n):
        time += rng.randrange(0, max_step_ms)
        price = round(price * math.exp(rng.gauss(0.0, 2e-4)), 2)
        out.append((time, price))
    return out


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["500ms", "1s", "3s", "2t"]))
def test_each_label_is_learned_on_the_features_served_at_t_and_the_first_tick_at_or_after_t_plus_h(
    seed: int, horizon: str
) -> None:
    ticks = walk(random.Random(seed), 150)
    forecaster = spying(horizon, capacity=4)
    predictions = feed(forecaster, ticks)
    spec = forecaster.horizons[0]
    model = forecaster.states["SPY"].horizons[0].model
    # The model is asked once per tick from the second on (the first has no return yet), on that tick's features.
    # A pending label keeps the features' values, not the dict: the learned dict is an equal one (same keys in
    # the same order, same values), so a learned x can stand for any tick whose features it equals.
    asked = model.asked  # type: ignore[attr-defined]
    assert len(asked) == len(ticks) - 1
    learned = model.learned  # type: ignore[attr-defined]
    assert learned, "nothing was learned"

    def target_of(t: int) -> float | None:
        """The label of a forecast at tick t, None if the walk ends before it."""
        if spec.in_ticks:
            label: int | None = t + spec.amount if t + spec.amount < len(ticks) else None
        else:
            label = next((j for j in range(t + 1, len(ticks)) if ticks[j][0] >= ticks[t][0] + spec.amount), None)
        return None if label is None else 1e4 * math.log(ticks[label][1] / ticks[t][1])

    for x, target in learned:
        # Learned on the features served at its tick t (no later ones), labelled by the first tick at/after t + h.
        served_at = [i + 1 for i, seen in enumerate(asked) if list(seen.items()) == list(x.items())]
        labels = [label for label in map(target_of, served_at) if label is not None]
        assert any(math.isclose(target, label, abs_tol=1e-9) for label in labels)
    assert len(predictions) == len(ticks)


def test_a_gap_drops_pending_labels_is_not_learned_and_flags_the_predictions_after_it() -> None:
    forecaster = spying("1s,10s", gap_ms=60_000)
    before = [(i * 100, 100.0 + (i % 2) * 0.01) for i in range(50)]  # 5 s of trading, then a 1 h halt
    feed(forecaster, before)
    state = forecaster.states["SPY"]
    pending = [len(h.queue.pending) for h in state.horizons]
    learned = [len(h.model.learned) for h in state.horizons]  # type: ignore[attr-defined]
    after = [(3_600_000 + i * 100, 150.0) for i in range(200)]
    predictions = feed(forecaster, after, start=len(before))
    assert [h.queue.dropped_gap for h in state.horizons] == pending and state.gaps == 1
    for horizon, count in zip(state.horizons, learned, strict=True):
        targets = [y for _, y in horizon.model.learned[count:]]  # type: ignore[attr-defined]
        assert all(abs(y) < 1.0 for y in targets), "the +40% across the halt was learned"
    flagged = [FLAG_AFTER_GAP in p.flags for p in predictions]
    # Flagged from the first tick after the gap through the longest horizon (10 s = 100 ticks here).
    assert flagged == [True] * 101 + [False] * 99
    assert predictions[0].status == "WARMING_UP" and predictions[0].forecasts[0].ready is False


def test_event_time_jumping_back_further_than_the_gap_restarts_the_labels_as_a_gap_does() -> None:
    # A file replayed a second time, or history sent after live ticks. Without the restart, every forecast of the
    # earlier stretch was refused by the label queue's spacing (measured against the later time), nothing was
    # learned for as long as the jump, and the one label enqueued afterwards stood for all of them in the interval.
    forecaster = spying("1s,10s", gap_ms=60_000)
    feed(forecaster, [(3_600_000 + i * 100, 100.0 + (i % 2) * 0.01) for i in range(50)])
    state = forecaster.states["SPY"]
    learned = [len(h.model.learned) for h in state.horizons]  # type: ignore[attr-defined]
    replayed = feed(forecaster, [(i * 100, 100.0 + (i % 2) * 0.01) for i in range(200)], start=50)
    assert state.gaps == 1
    assert FLAG_TIME_REGRESSED in replayed[0].flags and FLAG_AFTER_GAP in replayed[0].flags
    assert not any(FLAG_TIME_REGRESSED in p.flags for p in replayed[1:]), "the replayed stretch is in order"
    gained = [len(h.model.learned) - n for h, n in zip(state.horizons, learned, strict=True)]  # type: ignore[attr-defined]
    assert gained[0] > 50 and gained[1] > 0, f"labels learned in the 20 s after the jump back: {gained}"
    assert max(h.interval.scored for h in state.horizons if h.interval) < 250, "one label stood for many"


def test_one_tick_stamped_ahead_within_the_gap_does_not_stall_the_time_horizons() -> None:
    # A producer clock glitch: one tick stamped 20 s ahead, well within the 300 s gap. Its forecast joined each
    # time horizon's queue, due 20 s after the real ticks' own; every real tick after it was refused by the
    # spacing (measured against the future stamp) or waited behind it, so nothing was learned until event time
    # caught up with the glitch, and the one label enqueued then stood for all the forecasts served meanwhile.
    forecaster = spying("1s,10s", gap_ms=300_000)
    start = 3_600_000
    feed(forecaster, [(start + i * 100, 100.0 + (i % 2) * 0.01) for i in range(600)])  # 60 s of trading
    state = forecaster.states["SPY"]
    glitch = start + 600 * 100
    feed(forecaster, [(glitch + 20_000, 100.01)], start=600)
    learned = [len(h.model.learned) for h in state.horizons]  # type: ignore[attr-defined]
    real = [(glitch + i * 100, 100.0 + (i % 2) * 0.01) for i in range(1, 200)]  # the next 20 s, as stamped
    predictions = feed(forecaster, real, start=601)
    gained = [len(h.model.learned) - n for h, n in zip(state.horizons, learned, strict=True)]  # type: ignore[attr-defined]
    # In order, 1s learns ~5 a second here (every other tick: 125 ms apart at least) and 10s about 8 per 10 s.
    assert gained[0] > 80 and gained[1] > 5, f"labels learned (1s, 10s) in the 20 s after the glitch: {gained}"
    flagged = [FLAG_TIME_REGRESSED in p.flags for p in predictions]
    assert flagged == [True, True] + [False] * 197, "two ticks behind tell the stamp was ahead: the rest are in order"
    assert max(h.interval.scored for h in state.horizons if h.interval) < 1000, "one label stood for many"


def test_a_gap_after_a_tick_stamped_ahead_is_still_a_gap() -> None:
    # The symbol's latest time stayed at the stamp 200 s ahead, and a gap was measured from it: a real 350 s halt
    # soon after the glitch looked like 160 s, so the return across it was learned and nothing was flagged.
    forecaster = spying("1s,10s", gap_ms=300_000)
    start = 3_600_000
    feed(forecaster, [(start + i * 100, 100.0 + (i % 2) * 0.01) for i in range(600)])
    glitch = start + 600 * 100
    feed(forecaster, [(glitch + 200_000, 100.01)], start=600)
    feed(forecaster, [(glitch + i * 100, 100.0 + (i % 2) * 0.01) for i in range(1, 100)], start=601)
    state = forecaster.states["SPY"]
    [after_halt] = feed(forecaster, [(glitch + 10_000 + 350_000, 150.0)], start=700)
    assert state.gaps == 1 and FLAG_AFTER_GAP in after_halt.flags, (
        f"a 350 s halt after the glitch: gaps {state.gaps}, flags {after_halt.flags}"
    )


def test_one_tick_stamped_behind_within_the_gap_drops_no_pending_label() -> None:
    # The opposite glitch: the tick's own forecast is refused by the spacing, and the pending ones stay.
    forecaster = spying("1s,10s", gap_ms=300_000)
    ticks = [(3_600_000 + i * 100, 100.0 + (i % 2) * 0.01) for i in range(800)]
    ticks[600] = (ticks[600][0] - 20_000, ticks[600][1])
    predictions = feed(forecaster, ticks)
    assert [FLAG_TIME_REGRESSED in p.flags for p in predictions].count(True) == 1
    assert [h.queue.dropped_gap for h in forecaster.states["SPY"].horizons] == [0, 0]


def test_a_snapshot_round_trip_neither_loses_nor_double_learns_a_pending_label() -> None:
    ticks = walk(random.Random(7), 2000)
    straight = Forecaster(model_spec("linear"), "a", horizons=HORIZONS, coverage=0.9)
    feed(straight, ticks)
    first = Forecaster(model_spec("linear"), "a", horizons=HORIZONS, coverage=0.9)
    feed(first, ticks[:1000])
    second = Forecaster(model_spec("linear"), "b", horizons=HORIZONS, coverage=0.9)
    second.states["SPY"] = pickle.loads(pickle.dumps(first.states["SPY"]))
    assert any(h.queue.pending for h in second.states["SPY"].horizons)
    last = feed(second, ticks[1000:], start=1000)[-1]
    expected = straight.states["SPY"].last_prediction
    assert expected is not None
    assert [(f.labels_learned, f.predicted_return_bps, f.empirical_coverage) for f in last.forecasts] == [
        (f.labels_learned, f.predicted_return_bps, f.empirical_coverage) for f in expected.forecasts
    ]


def _issue15_layout(queue: LabelQueue) -> LabelQueue:
    """``queue`` as a snapshot of issue 15 restores it: a deque of entries with a features dict each."""
    entries: deque[PendingForecast] = deque()
    for entry in queue.pending:
        old = PendingForecast.__new__(PendingForecast)
        old.__setstate__([entry.due, entry.made_at_ms, entry.log_price, entry.features, entry.forecast_bps,
                          entry.half_width_bps, entry.weight, entry.challengers])  # fmt: skip
        entries.append(old)
    values = queue.__getstate__()
    values[PICKLED_FIELDS.index("pending")] = entries
    restored = LabelQueue.__new__(LabelQueue)
    restored.__setstate__(values)
    return restored


def test_pending_labels_pickled_as_issue_15_did_restore_and_learn_the_same() -> None:
    ticks = walk(random.Random(7), 2000)
    straight = Forecaster(model_spec("linear"), "a", horizons=HORIZONS, coverage=0.9)
    feed(straight, ticks)
    first = Forecaster(model_spec("linear"), "a", horizons=HORIZONS, coverage=0.9)
    feed(first, ticks[:1000])
    state = pickle.loads(pickle.dumps(first.states["SPY"]))
    for horizon in state.horizons:
        horizon.queue = _issue15_layout(horizon.queue)
    assert all(isinstance(h.queue.pending, list) for h in state.horizons)
    assert {h.queue.pending[0].feature_names for h in state.horizons if h.queue.pending} == {
        tuple(first.states["SPY"].horizons[0].queue.pending[0].features)
    }
    second = Forecaster(model_spec("linear"), "b", horizons=HORIZONS, coverage=0.9)
    second.states["SPY"] = state
    last = feed(second, ticks[1000:], start=1000)[-1]
    expected = straight.states["SPY"].last_prediction
    assert expected is not None
    assert [(f.labels_learned, f.predicted_return_bps, f.empirical_coverage) for f in last.forecasts] == [
        (f.labels_learned, f.predicted_return_bps, f.empirical_coverage) for f in expected.forecasts
    ]


def test_a_snapshot_from_before_horizons_restores_and_keeps_its_next_tick_model() -> None:
    old = Forecaster(model_spec("linear"), "old")
    feed(old, walk(random.Random(3), 300))
    values = old.states["SPY"].__getstate__()
    # A worker before issue 15 pickled the first 15 fields (up to snapshot_generation).
    restored = SymbolState.__new__(SymbolState)
    restored.__setstate__(values[:15])
    assert restored.horizons == [] and restored.gaps == 0
    new = Forecaster(model_spec("linear"), "new", horizons=parse_horizons("1t,10s"), coverage=0.9)
    new.states["SPY"] = restored
    prediction = feed(new, [(10**6, 100.0)], start=300)[0]
    assert prediction.forecasts[0].labels_learned >= 298, "the next-tick model was not kept"
    assert prediction.forecasts[1].labels_learned == 0


def test_a_busy_symbol_pickles_within_20_kb_at_the_default_horizons() -> None:
    # SPY's busiest stretches in the real file: trades every few ms, for longer than the longest horizon.
    rng = random.Random(1)
    forecaster = Forecaster(model_spec("linear"), "m", horizons=HORIZONS, coverage=0.9, gap_ms=300_000)
    feed(forecaster, walk(rng, 20_000, max_step_ms=20))
    state = forecaster.states["SPY"]
    assert [len(h.queue.pending) for h in state.horizons] == [8, 8, 8]
    assert len(snapshot_pickling.dumps(state)) <= 20_000  # what a snapshot holds (9.3 KB; a plain pickle: 8.0 KB)


@pytest.mark.parametrize(("snapshotted", "configured"), [(None, 0.9), (0.9, 0.95), (0.9, None)])
def test_a_restored_symbol_serves_the_interval_coverage_its_new_worker_is_configured_with(
    snapshotted: float | None, configured: float | None
) -> None:
    # TICKCAST_INTERVAL_COVERAGE changed across a restart: the restored symbols kept the snapshot's intervals
    # (none, or the old coverage) for as long as they lived, while fresh ones served the configured coverage.
    ticks = walk(random.Random(5), 600)
    old = Forecaster(model_spec("linear"), "old", horizons=HORIZONS, coverage=snapshotted)
    feed(old, ticks[:500])
    new = Forecaster(model_spec("linear"), "new", horizons=HORIZONS, coverage=configured)
    new.states["SPY"] = pickle.loads(snapshot_pickling.dumps(old.states["SPY"]))
    last = feed(new, ticks[500:], start=500)[-1]
    served = [(f.nominal_coverage, f.interval_lo_bps is None) for f in last.forecasts]
    assert served == [(configured, configured is None)] * len(HORIZONS), f"served after the restore: {served}"


def test_a_restored_symbol_keeps_as_many_pending_labels_as_its_new_worker_is_configured_to() -> None:
    # TICKCAST_LABEL_CAPACITY lowered across a restart (to save memory): restored symbols kept the old bound.
    ticks = walk(random.Random(6), 2000, max_step_ms=100)
    old = Forecaster(model_spec("linear"), "old", horizons=HORIZONS, capacity=8)
    feed(old, ticks[:1000])
    new = Forecaster(model_spec("linear"), "new", horizons=HORIZONS, capacity=2)
    new.states["SPY"] = pickle.loads(snapshot_pickling.dumps(old.states["SPY"]))
    feed(new, ticks[1000:], start=1000)  # ~50 s of event time: the old entries of 1 s and 10 s are labelled
    depths = [h.queue.depth for h in new.states["SPY"].horizons]
    assert max(depths[:2]) <= 2, f"pending labels per horizon after the restore: {depths}"


@pytest.mark.parametrize("horizon", ["5t", "10t", "64t"])
def test_a_tick_horizon_learns_the_label_of_every_tick_whatever_the_label_capacity(horizon: str) -> None:
    # A kt horizon keeps each of its k pending ticks (module doc of delayed_labels); the label capacity bounds
    # time horizons. With k above the capacity (8), k - 8 ticks of every k were skipped: never learned.
    k = parse_horizons(horizon)[0].amount
    ticks = walk(random.Random(8), 400)
    forecaster = spying(horizon, capacity=8)
    last = feed(forecaster, ticks)[-1]
    queue = forecaster.states["SPY"].horizons[0].queue
    # Every tick but the first (no return yet) is forecast; those with a k-th tick after them are learned.
    assert (last.forecasts[0].labels_learned, queue.skipped) == (len(ticks) - 1 - k, 0)
