"""The default recipe's learn and predict arithmetic, run on River's own objects without River's per-call machinery.

The ``linear`` recipe is ``StandardScaler | TargetStandardScaler(LinearRegression(SGD))``. River spends most of a
learn on dispatch rather than arithmetic: the scaler walks the features twice (learn, then transform), the
target scaler calls three small methods, and ``LinearRegression.learn_one`` builds a masked ``VectorDict`` per
call, goes through ``_fit``, ``_eval_gradient_one``, ``optimizer.step`` (four ``isinstance`` checks and a
``learning_rate`` property) and ``isub_scaled``'s generic fallback (which builds the scaled gradient twice).
Here the same operations run in one function per call, in River's order and with River's expressions (so the
same floats, sign of zero and NaN), on the very objects River holds: the scaler's ``counts``/``means``/``vars``,
the target scaler's ``Var``, the regression's ``_weights``, ``intercept`` and optimizer step count. Nothing new
is stored, so snapshots, restores and a model that River itself keeps training are unaffected.

River stays the reference: ``tests/unit/predictor/test_linear_step.py`` checks, over random streams, that a
model trained here predicts the same bits as one trained by River's own methods and pickles to the same bytes.
Any model this module does not recognise exactly (another optimizer, loss, initializer, an L1/L2 penalty, a
windowed or mean-only scaler, a subclass) goes through River's methods (:mod:`tickcast.predictor.model_calls`).
"""

from __future__ import annotations

from typing import Any

from river import linear_model, optim, preprocessing, stats
from river.utils import VectorDict

from tickcast.predictor.models import LeanTargetStandardScaler, SquaredLoss

_from_scaled = VectorDict.from_scaled
#: Target scalers whose learn/predict are River's ``TargetStandardScaler``'s (``_update``, ``_scale``, ``_unscale``).
TARGET_SCALERS = frozenset({preprocessing.TargetStandardScaler, LeanTargetStandardScaler})
#: Losses whose gradient is River's squared loss's ``2 * (y_pred - y_true)`` and whose mean function is the identity.
SQUARED_LOSSES = frozenset(
    kind
    for kind in (optim.losses.Squared, SquaredLoss)
    if kind.gradient is optim.losses.Squared.gradient and kind.mean_func is optim.losses.Squared.mean_func
)


def fused_regression(scaler: Any, target: Any) -> Any:
    """The ``LinearRegression`` inside ``StandardScaler | TargetStandardScaler(...)`` this module can drive, or None.

    >>> from tickcast.predictor.models import build_model
    >>> type(fused_regression(*build_model("linear").steps.values())).__name__
    'LinearRegression'
    >>> fused_regression(*build_model("pa").steps.values()) is None
    True
    """
    if type(scaler) is not preprocessing.StandardScaler or scaler.window_size is not None or not scaler.with_std:
        return None
    if type(target) not in TARGET_SCALERS:
        return None
    var = target.var
    if type(var) is not stats.Var or type(var.mean) is not stats.Mean:
        return None
    regression = target.regressor
    if (
        type(regression) is not linear_model.LinearRegression
        or type(regression.optimizer) is not optim.SGD
        or type(regression.loss) not in SQUARED_LOSSES
        or type(regression._weights) is not VectorDict
        or regression.l1 != 0.0  # River's own tests of the penalties
        or regression.l2
    ):
        return None
    return regression


def learn(scaler: Any, target: Any, regression: Any, x: dict[str, float], y: float) -> None:
    """``(scaler | target).learn_one(x, y)`` for a ``regression`` from :func:`fused_regression`: the same state after.

    >>> from tickcast.predictor.models import build_model
    >>> scaler, target = build_model("linear").steps.values()
    >>> learn(scaler, target, fused_regression(scaler, target), {"r1_bps": 2.0}, 1.0)
    >>> dict(scaler.means), target.regressor.optimizer.n_iterations
    ({'r1_bps': 2.0}, 1)
    """
    # StandardScaler.learn_one, then transform_one of the same x (one feature's transform reads only its own stats).
    counts, means, variances = scaler.counts, scaler.means, scaler.vars
    z = {}
    for i, xi in x.items():
        n = counts[i] + 1
        counts[i] = n
        old = means[i]
        means[i] = m = old + (xi - old) / n
        v = variances[i]
        variances[i] = v = v + ((xi - old) * (xi - m) - v) / n
        z[i] = (xi - m) / v**0.5 if v else 0.0
    # TargetStandardScaler: Var.update(y) (Mean.update with w=1.0), then _scale(y).
    var = target.var
    mean = var.mean
    old = mean._mean
    mean.n = n = mean.n + 1.0
    mean._mean = m = old + (1.0 / n) * (y - old)
    var._S = s = var._S + 1.0 * (y - old) * (y - m)
    ddof = var.ddof
    deviation = (s / (n - ddof) if n > ddof else 0.0) ** 0.5
    scaled_y = (y - m) / deviation if deviation else 0.0
    # LinearRegression.learn_one with SGD. In learn mode River's weights give each missing feature the
    # initializer's value, in x's order, as the dot product meets it; after that a plain dot and a plain
    # isub_scaled compute what River's masked ones do, in the same order.
    weights = regression._weights
    if not z.keys() <= weights.keys():
        initializer = regression.initializer
        for i in z:
            if i not in weights:
                weights[i] = initializer()
    clip = regression.clip_gradient
    gradient = float(max(min(2 * (weights.dot(z) + regression.intercept - scaled_y), clip), -clip))
    optimizer = regression.optimizer
    step = optimizer.n_iterations
    regression.intercept -= regression.intercept_lr.get(step) * gradient
    weights.isub_scaled(_from_scaled(z, gradient), optimizer.lr.get(step))
    optimizer.n_iterations = step + 1


def predict(scaler: Any, target: Any, regression: Any, x: dict[str, float]) -> float:
    """``(scaler | target).predict_one(x)`` for a ``regression`` from :func:`fused_regression`: the same float.

    >>> from tickcast.predictor.models import build_model
    >>> scaler, target = build_model("linear").steps.values()
    >>> predict(scaler, target, fused_regression(scaler, target), {"r1_bps": 2.0})
    0.0
    """
    means, variances = scaler.means, scaler.vars
    z = {}
    for i, xi in x.items():
        v = variances[i]
        z[i] = (xi - means[i]) / v**0.5 if v else 0.0  # as transform_one: means[i] is read only if v
    raw = regression._weights.dot(z) + regression.intercept
    var = target.var
    n, ddof = var.mean.n, var.ddof
    return raw * (var._S / (n - ddof) if n > ddof else 0.0) ** 0.5 + var.mean._mean
