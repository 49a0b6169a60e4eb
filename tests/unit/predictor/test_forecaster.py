"""Forecaster.process is all-or-nothing: a tick whose model step raises leaves no trace in the state."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tickcast.common.records import Lineage, Tick
from tickcast.predictor.forecaster import Forecaster, SymbolState
from tickcast.predictor.models import OnlineRegressor, model_spec
from tickcast.testing.ledger import learning_breaks

PROBE = {"r1_bps": 1.0, "last_nonzero_bps": -2.0, "ewm_fast_bps": 0.5, "ewm_slow_bps": 0.1}


class Flaky:
    """Wraps a model; raises from ``learn_one`` (before touching the model) while ``fail`` is set."""

    def __init__(self, inner: OnlineRegressor) -> None:
        self.inner = inner
        self.fail = False

    def learn_one(self, x: dict[Any, Any], y: Any) -> None:
        if self.fail:
            raise ValueError("injected")
        self.inner.learn_one(x, y)

    def predict_one(self, x: dict[Any, Any]) -> Any:
        return self.inner.predict_one(x)


def fingerprint(state: SymbolState) -> dict[str, Any]:
    """Everything observable about a symbol's state, the model judged by what it predicts."""
    features = state.features
    model = state.model.inner if isinstance(state.model, Flaky) else state.model
    return {
        "features": (
            features.last_price, features.last_time_ms, features.ticks, features.lag1, features.last_nonzero,
            features.ewm_fast.get(), features.ewm_slow.get(), features.variance.get(), features.move_size.get(),
        ),
        "counters": (state.ticks_learned, state.ticks_seen, state.errors_scored, state.abs_error.get()),
        "pending": (state.pending_features, state.pending_forecast),
        "where": (state.partition, state.applied_offset, state.last_event_time),
        "last_prediction": state.last_prediction,
        "model_says": model.predict_one(PROBE),
    }  # fmt: skip


def forecaster_with_flaky_model() -> tuple[Forecaster, Flaky]:
    forecaster = Forecaster(model_spec("linear"), worker="prop")
    flaky = Flaky(forecaster.spec.build())
    forecaster.state("SPY").model = flaky
    return forecaster, flaky


moves = st.lists(st.tuples(st.floats(-30.0, 30.0), st.booleans()), min_size=1, max_size=80)


@settings(max_examples=60, deadline=None)
@given(moves)
def test_final_state_equals_the_state_after_only_the_successful_ticks(steps: list[tuple[float, bool]]) -> None:
    with_failures, flaky = forecaster_with_flaky_model()
    only_successes, _ = forecaster_with_flaky_model()
    price = 100.0
    for offset, (move_bps, fails) in enumerate(steps):
        price *= math.exp(move_bps / 1e4)
        tick, lineage = Tick("SPY", price, 1.0, offset), Lineage("ticks", 0, offset, 0)
        flaky.fail = fails
        try:
            with_failures.process(tick, lineage, now_us=offset)
        except ValueError:
            continue
        only_successes.process(tick, lineage, now_us=offset)
    assert fingerprint(with_failures.states["SPY"]) == fingerprint(only_successes.states["SPY"])


class FailingPredictor:
    """Learns nothing, and every forecast raises: a model bug at prediction time."""

    def learn_one(self, x: dict[Any, Any], y: Any) -> None:
        return None

    def predict_one(self, x: dict[Any, Any]) -> float:
        raise ZeroDivisionError("predict")


def test_a_model_that_raises_when_predicting_is_replaced_like_one_that_returns_nan() -> None:
    forecaster = Forecaster(model_spec("persistence"), worker="unit")  # no warm-up: predicts from tick 2
    forecaster.state("SPY").model = FailingPredictor()
    first = forecaster.process(Tick("SPY", 100.0, 1.0, 0), Lineage("ticks", 0, 0, 0), now_us=0)
    second = forecaster.process(Tick("SPY", 100.1, 1.0, 1), Lineage("ticks", 0, 1, 0), now_us=1)
    assert (first.status, second.predicted_return_bps, second.predicted_price) == ("WARMING_UP", 0.0, 100.1)
    state = forecaster.states["SPY"]
    assert not isinstance(state.model, FailingPredictor) and state.applied_offset == 1


class BreaksOnCue:
    """Forecasts 0 bps and learns nothing until ``broken`` is set; then forecasts NaN, as a diverged model does."""

    def __init__(self) -> None:
        self.broken = False

    def learn_one(self, x: dict[Any, Any], y: Any) -> None:
        return None

    def predict_one(self, x: dict[Any, Any]) -> float:
        return math.nan if self.broken else 0.0


def test_a_replaced_model_restarts_labels_learned_but_ticks_learned_never_goes_back() -> None:
    # README ("Guarantee"): a symbol's ticks_learned never goes backwards; the kill -9 test checks it with
    # learning_breaks. A broken model is replaced by a fresh one: that one's training is labels_learned (and
    # status), not the symbol's count of ticks learned.
    forecaster = Forecaster(model_spec("persistence"), worker="unit")  # no warm-up: predicts from tick 2
    model = BreaksOnCue()
    forecaster.state("SPY").model = model
    predictions = []
    for offset in range(12):
        model.broken = offset == 8
        tick = Tick("SPY", 100.0 + offset % 3 / 10, 1.0, offset)
        predictions.append(forecaster.process(tick, Lineage("ticks", 0, offset, 0), now_us=offset))
    replaced = predictions[8]
    assert forecaster.states["SPY"].model is not model, "the NaN model was not replaced"
    assert replaced.forecasts[0].labels_learned == 0, "the fresh model's label count did not start over"
    assert learning_breaks(predictions) == []
    # Tick 0 has no return to forecast from, so tick 1 has no label; every tick after learns one.
    assert [p.ticks_learned for p in predictions] == [0, *range(11)], "ticks_learned is not one per learned tick"
