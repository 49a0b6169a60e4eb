"""A model's ``learn_one`` and ``predict_one``, with River's pipeline dispatch skipped for our two-step recipes.

Every recipe with a River model (:mod:`tickcast.predictor.models`) is ``StandardScaler | regressor``.
``Pipeline.learn_one`` walks a plan of step kinds, routes keyword arguments and calls the final step by
keyword; for two steps that is ~1.5 µs of a learn and ~1 µs of a predict, the largest part of a tick
that is neither features nor arithmetic. For exactly that shape the steps are called here in the
pipeline's own order (the scaler learns, then transforms; the regressor learns on what it transformed),
so the model ends in the same state and predicts the same floats, bit for bit (see the property test).
Any other model, and any pipeline in River's learn-during-predict mode, goes through its own methods.
"""

from __future__ import annotations

from typing import Any

from river import compose, linear_model, preprocessing

from tickcast.predictor.models import LeanPipeline, LeanTargetStandardScaler, OnlineRegressor

Pipeline = compose.Pipeline
#: Pipelines whose learn_one/predict_one are River's own (LeanPipeline only shares its cached plan).
RIVER_PIPELINES = frozenset({Pipeline, LeanPipeline})
#: Steps whose pipeline role is fixed by their type: an unsupervised transformer first, a regressor last.
DIRECT_FIRST = frozenset({preprocessing.StandardScaler})
DIRECT_LAST = frozenset(
    {
        preprocessing.TargetStandardScaler,
        LeanTargetStandardScaler,
        linear_model.LinearRegression,
        linear_model.PARegressor,
    }
)


def _direct_steps(model: Any) -> tuple[Any, Any] | None:
    """The (scaler, regressor) of a two-step pipeline this module may call step by step, else None."""
    if type(model) not in RIVER_PIPELINES or Pipeline._LEARN_UNSUPERVISED_DURING_PREDICT:
        return None
    steps = model.steps
    if len(steps) != 2:
        return None
    first, last = steps.values()
    if type(first) in DIRECT_FIRST and type(last) in DIRECT_LAST:
        return first, last
    return None


def learn_one(model: OnlineRegressor, x: dict[str, float], y: float) -> None:
    """``model.learn_one(x, y)``, the same state afterwards.

    >>> from tickcast.predictor.models import build_model
    >>> a, b = build_model("linear"), build_model("linear")
    >>> for i in range(50):
    ...     x = {"r1_bps": float(i % 7) - 3.0, "ewm_fast_bps": i / 50}
    ...     a.learn_one(x, i % 3 - 1.0)
    ...     learn_one(b, x, i % 3 - 1.0)
    >>> predict_one(a, {"r1_bps": 1.0, "ewm_fast_bps": 0.2}) == predict_one(b, {"r1_bps": 1.0, "ewm_fast_bps": 0.2})
    True
    """
    direct = _direct_steps(model)
    if direct is None:
        model.learn_one(x, y)
        return
    scaler, regressor = direct
    scaler.learn_one(x)
    regressor.learn_one(scaler.transform_one(x), y)


def predict_one(model: OnlineRegressor, x: dict[str, float]) -> Any:
    """``model.predict_one(x)``, the same value.

    >>> from tickcast.predictor.models import build_model
    >>> predict_one(build_model("linear"), {"r1_bps": 1.0})
    0.0
    """
    direct = _direct_steps(model)
    if direct is None:
        return model.predict_one(x)
    scaler, regressor = direct
    return regressor.predict_one(scaler.transform_one(x))
