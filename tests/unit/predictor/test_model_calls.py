"""Calling a recipe's steps directly gives River's pipeline results bit for bit, on any sequence of features."""

from __future__ import annotations

import pickle
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import compose, linear_model

from tickcast.predictor import model_calls
from tickcast.predictor.models import MODELS, build_model

FEATURES = ("r1_bps", "last_nonzero_bps", "ewm_fast_bps", "ewm_slow_bps")
values = st.floats(-1e4, 1e4, allow_nan=False)
examples = st.lists(
    st.tuples(st.dictionaries(st.sampled_from(FEATURES), values, min_size=1), values), min_size=1, max_size=60
)


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def parts(model: object) -> object:
    """A pipeline's steps, or the model itself."""
    steps = getattr(model, "steps", None)
    return model if steps is None else list(steps.values())


@pytest.mark.parametrize("name", sorted(MODELS))
@settings(max_examples=60, deadline=None)
@given(examples=examples, probe=st.dictionaries(st.sampled_from(FEATURES), values))
def test_direct_calls_learn_and_predict_as_the_pipeline(
    name: str, examples: list[tuple[dict[str, float], float]], probe: dict[str, float]
) -> None:
    through_pipeline, direct = build_model(name), build_model(name)
    for x, y in examples:
        assert bits(model_calls.predict_one(direct, x)) == bits(through_pipeline.predict_one(x))
        through_pipeline.learn_one(x, y)
        model_calls.learn_one(direct, x, y)
    assert bits(model_calls.predict_one(direct, probe)) == bits(through_pipeline.predict_one(probe))
    # The steps' whole state, not only what predictions show: weights, intercept, step counts, running moments
    # (the pipelines themselves differ in the execution plan River caches when its own methods run).
    assert pickle.dumps(parts(direct)) == pickle.dumps(parts(through_pipeline))


@pytest.mark.parametrize("name", ["linear", "pa"])
def test_the_river_recipes_take_the_direct_path(name: str) -> None:
    # Otherwise the test above would compare the pipeline with itself.
    assert model_calls._direct_steps(build_model(name)) is not None


def test_the_linear_recipe_learns_through_the_spelled_out_regression() -> None:
    direct = model_calls._direct_steps(build_model("linear"))
    assert direct is not None and type(direct[2]) is linear_model.LinearRegression


def test_learn_during_predict_goes_through_the_pipeline() -> None:
    with compose.learn_during_predict():
        assert model_calls._direct_steps(build_model("linear")) is None
