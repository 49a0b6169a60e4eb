"""The linear recipe's fused learn and predict leave River's objects as River's own methods would, bit for bit.

River is the reference: each test trains one model with River's methods (the pipeline's ``learn_one`` and
``predict_one``) and one through :mod:`tickcast.predictor.model_calls` (the fused path), on the same random
stream, and compares every prediction's bits and the two models' pickles.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import linear_model, optim, preprocessing

from tickcast.predictor import linear_step, model_calls
from tickcast.predictor.models import LeanPipeline, build_model

FEATURES = ("r1_bps", "last_nonzero_bps", "ewm_fast_bps", "ewm_slow_bps", "spread_bps")
# Prices give returns of a few bps; wide, tiny, repeated and zero values reach the scaler's and the
# target scaler's zero-variance branches, the gradient clip and the sign of zero.
values = st.one_of(
    st.floats(-1e4, 1e4, allow_nan=False),
    st.sampled_from((0.0, -0.0, 1.0, -1.0, 1e-300, 5e-324)),
    st.floats(-1e300, 1e300, allow_nan=False),
)
# Any subset of the features in any order: River's weights are keyed in first-seen order.
features = st.dictionaries(st.sampled_from(FEATURES), values)
streams = st.lists(st.tuples(features, values, features), min_size=1, max_size=80)
Stream = list[tuple[dict[str, float], float, dict[str, float]]]


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def assert_same_stream(reference: Any, fused: Any, stream: Stream) -> None:
    for x, y, probe in stream:
        reference.learn_one(x, y)
        model_calls.learn_one(fused, x, y)
        assert bits(model_calls.predict_one(fused, probe)) == bits(reference.predict_one(probe))
    # The steps, not the pipeline: River's own calls also fill the pipeline's cached plan (not part of the model).
    assert pickle.dumps(list(fused.steps.values())) == pickle.dumps(list(reference.steps.values()))


@settings(max_examples=300, deadline=None)
@given(stream=streams)
def test_the_fused_path_learns_and_predicts_as_river(stream: Stream) -> None:
    assert_same_stream(build_model("linear"), build_model("linear"), stream)


@settings(max_examples=50, deadline=None)
@given(before=streams, after=streams)
def test_a_restored_model_goes_on_as_river(before: Stream, after: Stream) -> None:
    model = build_model("linear")
    for x, y, _ in before:
        model.learn_one(x, y)
    # A snapshot holds River's own TargetStandardScaler (see LeanTargetStandardScaler); restored, it goes on alike.
    saved = pickle.dumps(model)
    assert_same_stream(pickle.loads(saved), pickle.loads(saved), after)


@settings(max_examples=30, deadline=None)
@given(stream=streams)
def test_river_s_own_classes_take_the_fused_path_too(stream: Stream) -> None:
    def recipe() -> Any:
        regressor = linear_model.LinearRegression(optimizer=optim.SGD(0.01), intercept_lr=0.05, clip_gradient=3.0)
        return preprocessing.StandardScaler() | preprocessing.TargetStandardScaler(regressor)

    fused = recipe()
    assert linear_step.fused_regression(*fused.steps.values()) is not None
    assert_same_stream(recipe(), fused, stream)


def test_the_linear_recipe_takes_the_fused_path() -> None:
    # Otherwise the tests above would compare River with itself.
    scaler, target = build_model("linear").steps.values()
    assert linear_step.fused_regression(scaler, target) is target.regressor


@pytest.mark.parametrize(
    "regressor",
    [
        linear_model.LinearRegression(l2=0.1),
        linear_model.LinearRegression(l1=0.1),
        linear_model.LinearRegression(optimizer=optim.Adam()),
        linear_model.LinearRegression(loss=optim.losses.Huber()),
    ],
    ids=["l2", "l1", "adam", "huber"],
)
def test_other_regressions_go_through_river(regressor: Any) -> None:
    model = LeanPipeline(preprocessing.StandardScaler(), preprocessing.TargetStandardScaler(regressor))
    assert linear_step.fused_regression(*model.steps.values()) is None


def test_other_scalers_go_through_river() -> None:
    target = build_model("linear").steps["TargetStandardScaler"]
    assert linear_step.fused_regression(preprocessing.StandardScaler(with_std=False), target) is None
    assert linear_step.fused_regression(preprocessing.StandardScaler(window_size=5), target) is None
    assert linear_step.fused_regression(preprocessing.MinMaxScaler(), target) is None
