"""The registry of named River pipelines a worker can run (``TICKCAST_MODEL``).

Every pipeline is built by :func:`build_model`, the one factory, so a name and
version in a prediction always mean the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import river
from river import linear_model, optim, preprocessing

from tickcast.predictor.baselines import EWMeanReturn, MeanReversion, Persistence


class OnlineRegressor(Protocol):
    """What the forecaster needs of a model: River's single-sample interface (estimators and pipelines)."""

    def learn_one(self, x: dict[Any, Any], y: Any) -> Any: ...

    def predict_one(self, x: dict[Any, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A named, versioned model recipe."""

    name: str
    version: str
    description: str
    build: Callable[[], OnlineRegressor]
    warmup_ticks: int = 20

    @property
    def full_version(self) -> str:
        """Recipe version plus the River release, since both change predictions."""
        return f"{self.version}+river{river.__version__}"


def _linear() -> OnlineRegressor:
    # Huber loss and clipped gradients keep one off-market print from dragging the
    # weights far; the scaler keeps features with different units comparable.
    return preprocessing.StandardScaler() | linear_model.LinearRegression(
        optimizer=optim.SGD(0.005),
        loss=optim.losses.Huber(epsilon=3.0),
        l2=1e-4,
        intercept_lr=0.001,
        clip_gradient=10.0,
    )


def _passive_aggressive() -> OnlineRegressor:
    return preprocessing.StandardScaler() | linear_model.PARegressor(C=0.01, mode=2, eps=0.1)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("linear", "1", "StandardScaler | LinearRegression (SGD, Huber loss, clipped gradients)", _linear),
        ModelSpec("pa", "1", "StandardScaler | PARegressor (passive-aggressive, C=0.01)", _passive_aggressive),
        ModelSpec("persistence", "1", "baseline: next return is 0", Persistence, warmup_ticks=0),
        ModelSpec("ew-mean", "1", "baseline: EW mean of past returns", EWMeanReturn, warmup_ticks=0),
        ModelSpec("mean-reversion", "1", "baseline: -0.3 x last non-zero return", MeanReversion, warmup_ticks=0),
    )
}

DEFAULT_MODEL = "linear"


class UnknownModel(ValueError):
    """The configured model name is not in the registry."""


def model_spec(name: str) -> ModelSpec:
    """Look a model up by name, with a message listing the choices.

    >>> model_spec("linear").name
    'linear'
    >>> model_spec("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tickcast.predictor.models.UnknownModel: unknown model 'nope'; choose one of: linear, pa, ...
    """
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModel(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None


def build_model(name: str) -> OnlineRegressor:
    """A fresh, untrained instance of the named pipeline.

    >>> build_model("linear").predict_one({"r1_bps": 1.0})
    0.0
    """
    return model_spec(name).build()
