"""A model's ``learn_one`` and ``predict_one``, with River's pipeline dispatch skipped for our two-step recipes.

Every recipe with a River model (:mod:`tickcast.predictor.models`) is ``StandardScaler | regressor``.
``Pipeline.learn_one`` walks a plan of step kinds, routes keyword arguments and calls the final step by
keyword; for two steps that is ~1.5 µs of a learn and ~1 µs of a predict, the largest part of a tick
that is neither features nor arithmetic. For exactly that shape the steps are called here in the
pipeline's own order (the scaler learns, then transforms; the regressor learns on what it transformed),
so the model ends in the same state and predicts the same floats, bit for bit (see the property test).
Any other model, and any pipeline in River's learn-during-predict mode, goes through its own methods.

The linear recipe's regressor, a target scaler around an SGD linear regression with squared loss and no
penalty, is called one level deeper (:func:`_learn_linear`, :func:`_predict_linear`): River's own operations
(its Rust weight vector's dot and scaled updates, the schedules) on the same values in the same order, without
the ~15 Python calls of its layers (TargetTransformRegressor, GLM._fit, Optimizer.step, the loss, clamp, ...):
~11,000 of a tick's ~235,000 instructions went to those calls alone. The target's running variance (River's
pure-Python ``stats.Var`` around a ``stats.Mean``) is updated and read with its own arithmetic spelled out,
which saves ten more calls a tick.
"""

from __future__ import annotations

import math
from typing import Any

from river import compose, linear_model, optim, preprocessing
from river.stats import Mean, Var
from river.utils import VectorDict

from tickcast.predictor.models import (
    ConstantRate,
    FlooredInverseScaling,
    LeanPipeline,
    LeanTargetStandardScaler,
    OnlineRegressor,
    SharedInverseScaling,
    SquaredLoss,
)

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
#: (regression, optimizer, loss) types of a target-scaled regressor whose learning :func:`_learn_linear` spells
#: out: plain SGD and squared loss (a snapshot pickled before SquaredLoss existed holds River's own).
LINEAR_PARTS = frozenset(
    (linear_model.LinearRegression, optim.SGD, loss) for loss in (SquaredLoss, optim.losses.Squared)
)
#: Learning-rate schedules whose ``get`` :func:`_learn_linear` spells out: constant ones, and the floored inverse
#: scaling of the linear recipe (shared, or by value as a snapshot from before sharing holds it).
CONSTANT_RATES = frozenset({optim.schedulers.Constant, ConstantRate})
FLOORED_RATES = frozenset({FlooredInverseScaling, SharedInverseScaling})


def _direct_steps(model: Any) -> tuple[Any, Any, Any] | None:
    """The (scaler, regressor, linear regression or None) of a pipeline this module may call step by step.

    The third is the regression inside the regressor when :func:`_learn_linear` may learn it (else None);
    None for a model that goes through its own methods.
    """
    if type(model) not in RIVER_PIPELINES or Pipeline._LEARN_UNSUPERVISED_DURING_PREDICT:
        return None
    steps = model.steps
    if len(steps) != 2:
        return None
    first, last = steps.values()
    if type(first) not in DIRECT_FIRST or type(last) not in DIRECT_LAST:
        return None
    if type(last) is LeanTargetStandardScaler:
        linear: Any = last.regressor
        parts = (type(linear), type(linear.optimizer), type(linear.loss))
        if parts in LINEAR_PARTS and not linear.l1 and not linear.l2:
            return first, last, linear
    return first, last, None


def _learn_and_scale(scaler: Any, x: dict[str, float]) -> dict[str, float]:
    """``scaler.learn_one(x)`` then ``scaler.transform_one(x)``, as one pass over the features.

    For River's running (unwindowed) standard scaler each feature's statistics are its own, so updating and
    scaling one feature before the next gives the same numbers as River's two loops (the lines below are theirs,
    with the values kept in locals): ~9,000 instructions less of a tick than walking the features and dicts twice.
    """
    if scaler.window_size is not None or not scaler.with_std:
        scaler.learn_one(x)
        return scaler.transform_one(x)
    counts, means, variances = scaler.counts, scaler.means, scaler.vars
    scaled = {}
    for i, xi in x.items():
        count = counts[i] + 1  # a Counter: 0 for a new feature
        counts[i] = count
        old_mean = means[i]  # defaultdicts: a new feature's 0.0 is stored as River's "+=" stores it
        mean = means[i] = old_mean + (xi - old_mean) / count
        old_var = variances[i]
        var = variances[i] = old_var + ((xi - old_mean) * (xi - mean) - old_var) / count
        scaled[i] = (xi - mean) / var**0.5 if var else 0.0
    return scaled


def _learn_linear(target: Any, linear: Any, x: dict[str, float], y: float) -> None:
    """``target.learn_one(x, y)`` for a target scaler around a penalty-free SGD linear regression, as River runs it.

    Each line is the River method named beside it, with the same operands in the same order.
    """
    var = target.var
    mean = var.mean
    if type(var) is Var and type(mean) is Mean:
        # TargetStandardScaler._update and _scale's var.get(): Var.update and Mean.update with w = 1.0 (their
        # "w *" and "w /" change no float), then Var.get, on the same attributes: five Python calls less.
        old_mean = mean._mean
        n = mean.n = mean.n + 1.0
        new_mean = mean._mean = old_mean + (1.0 / n) * (y - old_mean)
        sum_squares = var._S = var._S + (y - old_mean) * (y - new_mean)
        ddof = var.ddof
        deviation = (sum_squares / (n - ddof) if n > ddof else 0.0) ** 0.5
    else:
        var.update(y)  # TargetStandardScaler._update
        deviation = var.get() ** 0.5
        new_mean = var.mean.get()
    y = (y - new_mean) / deviation if deviation else 0.0  # TargetStandardScaler._scale (safe_div)
    # GLM.learn_one(x, y, w=1.0): its learn mode's view of the weights, which makes a missing weight as the
    # initializer says. River swaps the view in and out of _weights; it is only read through here.
    weights: Any = VectorDict(linear._weights, linear.initializer, x)
    # GLM._fit: SGD's look_ahead does nothing. _eval_gradient_one: Squared.gradient, times w (1.0 changes no
    # float), clamped to the clip and made a float.
    loss_gradient = 2 * ((weights.dot(x) + linear.intercept) - y)
    clip = linear.clip_gradient
    below = clip if clip < loss_gradient else loss_gradient  # min(loss_gradient, clip) and max(.., -clip) spelled
    loss_gradient = float(-clip if -clip > below else below)  # out: the builtins' choices, NaN included
    gradient: Any = VectorDict.from_scaled(x, loss_gradient)
    optimizer = linear.optimizer
    t = optimizer.n_iterations
    # The schedules' get(t), spelled out for the two kinds the recipe uses (any other is called).
    schedule = linear.intercept_lr
    intercept_rate = schedule.learning_rate if type(schedule) in CONSTANT_RATES else schedule.get(t)
    linear.intercept -= intercept_rate * loss_gradient  # _get_intercept_update
    schedule = optimizer.lr
    if type(schedule) in FLOORED_RATES:
        rate = schedule.learning_rate / math.pow(t + 1, schedule.power)
        floor = schedule.floor
        rate = floor if floor > rate else rate  # max(rate, floor) spelled out, as features.clip spells out min
    else:
        rate = schedule.get(t)
    weights.isub_scaled(gradient, rate)  # Optimizer.step -> SGD
    optimizer.n_iterations += 1


def _predict_linear(target: Any, linear: Any, x: dict[str, float]) -> float:
    """``target.predict_one(x)`` for what :func:`_learn_linear` learns: the regression's raw dot, unscaled."""
    raw: float = linear._weights.dot(x) + linear.intercept  # LinearRegression.predict_one (Squared's mean_func: y)
    var = target.var
    mean = var.mean
    if type(var) is Var and type(mean) is Mean:
        n, ddof = mean.n, var.ddof  # TargetStandardScaler._unscale with Var.get and Mean.get spelled out
        return raw * (var._S / (n - ddof) if n > ddof else 0.0) ** 0.5 + mean._mean
    return raw * var.get() ** 0.5 + var.mean.get()  # TargetStandardScaler._unscale


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
    scaler, regressor, linear = direct
    scaled = _learn_and_scale(scaler, x)
    if linear is None:
        regressor.learn_one(scaled, y)
    else:
        _learn_linear(regressor, linear, scaled, y)


def predict_one(model: OnlineRegressor, x: dict[str, float]) -> Any:
    """``model.predict_one(x)``, the same value.

    >>> from tickcast.predictor.models import build_model
    >>> predict_one(build_model("linear"), {"r1_bps": 1.0})
    0.0
    """
    direct = _direct_steps(model)
    if direct is None:
        return model.predict_one(x)
    scaler, regressor, linear = direct
    if linear is None:
        return regressor.predict_one(scaler.transform_one(x))
    if scaler.window_size is not None or not scaler.with_std:
        return _predict_linear(regressor, linear, scaler.transform_one(x))
    # StandardScaler.transform_one's running, scaled branch, its lines as they are: a call less a tick.
    means, variances = scaler.means, scaler.vars
    scaled = {}
    for i, xi in x.items():
        v = variances[i]
        scaled[i] = (xi - means[i]) / v**0.5 if v else 0.0
    return _predict_linear(regressor, linear, scaled)
