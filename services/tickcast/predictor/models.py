"""The registry of named River pipelines a worker can run (``TICKCAST_MODEL``).

Every pipeline is built by :func:`build_model`, the one factory, so a name and
version in a prediction always mean the same code.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, SupportsIndex

import river
from river import compose, linear_model, optim, preprocessing, stats

from tickcast.predictor.baselines import EWMeanReturn, MeanReversion, Persistence
from tickcast.predictor.inline_attributes import MANAGED_DICT, read_attributes


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
        """Recipe version plus the River release, since both change predictions.

        Interned: every prediction keeps it, and a restored one holds an interned copy (``snapshot_pickling``).
        """
        return sys.intern(f"{self.version}+river{river.__version__}")


class FlooredInverseScaling(optim.base.Scheduler):
    """Learning rate ``learning_rate / (t + 1) ** power``, never below ``floor``.

    The decay lets a fresh model find its weights in a few thousand ticks; the floor keeps it
    following a market that changes over days, where a plain inverse schedule would freeze it.

    >>> s = FlooredInverseScaling(0.02, power=0.5, floor=1e-4)
    >>> s.get(0), s.get(99), s.get(10**6)
    (0.02, 0.002, 0.0001)
    """

    def __init__(self, learning_rate: float, power: float, floor: float) -> None:
        self.learning_rate = learning_rate
        self.power = power
        self.floor = floor

    def get(self, t: int) -> float:
        return max(self.learning_rate / math.pow(t + 1, self.power), self.floor)


class _SharedSetting:
    """A model's immutable setting shared by every symbol's model, pickled by name so a restore shares it too.

    The loss, the initializer and the learning-rate schedules hold no state (River updates the optimizer's
    step count, never the schedule), so one object serves all; by value, each was ~250 bytes per model, in
    every symbol's state, once per horizon. A snapshot pickled by value before restores as it was.
    """

    def __reduce__(self) -> str | tuple[Any, ...]:
        return _SHARED_NAMES.get(id(self)) or super().__reduce__()


#: id of each shared setting -> its name in this module (they live as long as the module).
_SHARED_NAMES: dict[int, str] = {}


def _shared(setting: Any, name: str) -> Any:
    _SHARED_NAMES[id(setting)] = name
    return setting


class SquaredLoss(_SharedSetting, optim.losses.Squared):
    """River's squared loss (see :class:`_SharedSetting`)."""


class ZerosInitializer(_SharedSetting, optim.initializers.Zeros):
    """River's zero initializer (see :class:`_SharedSetting`)."""


class ConstantRate(_SharedSetting, optim.schedulers.Constant):
    """River's constant schedule (see :class:`_SharedSetting`)."""


class SharedInverseScaling(_SharedSetting, FlooredInverseScaling):
    """:class:`FlooredInverseScaling` (see :class:`_SharedSetting`)."""


class LeanPipeline(compose.Pipeline):
    """River's ``Pipeline``, with its cached execution plan shared and left out of snapshots.

    River caches, per pipeline, which extra arguments each step's methods accept: a new ``frozenset`` per step
    and method and a dict of them, ~1 KB per pipeline, equal in every symbol's. Here equal parts are one
    shared object, and the cache is not pickled: River rebuilds it on first use, as after any change of steps.
    Learning and predicting are River's own (the plan's content is unchanged).

    Its steps, an ``OrderedDict`` in River (~0.4 KB), are a plain dict once built (~0.2 KB), in every symbol's
    models: River needs ordered-dict methods only while composing (``move_to_end``); a dict keeps the order.
    """

    def __init__(self, *steps: Any) -> None:
        super().__init__(*steps)
        self.steps = dict(self.steps)  # type: ignore[assignment]

    def _build_plan(self) -> tuple[Any, ...]:
        plan = super()._build_plan()
        self._plan = tuple(tuple(_shared_part(part) for part in item) for item in plan)
        params = self._last_step_params
        self._last_step_params = _SHARED_PARTS.setdefault(tuple(params.items()), params)
        return self._plan

    def __getstate__(self) -> dict[str, Any]:
        # By name if it can (inline_attributes): asking for __dict__ would give the live pipeline a real one.
        attributes = read_attributes(self)
        state = dict(vars(self)) if attributes is None else attributes
        state.update(_plan=None, _inference_transformers=(), _last_step_cached=None, steps=dict(self.steps))
        state.pop("_last_step_params", None)
        return state

    def __setstate__(self, state: dict[str, Any] | tuple[Any, dict[str, Any]]) -> None:
        # A snapshot pickled before this method existed holds pickle's slot state, (None, attributes).
        attributes = state[1] if isinstance(state, tuple) else state
        for name, value in attributes.items():
            setattr(self, name, value)  # inline, as __init__ set them (not a real __dict__: ~64 B less)
        self.steps = {name: _lean_step(_inline_copy(step)) for name, step in self.steps.items()}  # type: ignore[assignment]


class LeanTargetStandardScaler(preprocessing.TargetStandardScaler):
    """River's ``TargetStandardScaler`` without two bound methods of its own per model.

    River's keeps ``func`` and ``inverse_func`` as bound methods of itself (~160 B, and a reference cycle, per
    model; four models per symbol with a challenger). Here they are the class's functions, bound on each call:
    the same ``_scale`` and ``_unscale``, so the same numbers. It pickles as River's own class, as it was
    before this one existed (older workers load it); :class:`LeanPipeline` makes a loaded one lean again.
    """

    func = preprocessing.TargetStandardScaler._scale
    inverse_func = preprocessing.TargetStandardScaler._unscale

    def __init__(self, regressor: Any) -> None:
        self.var = stats.Var()
        self.regressor = regressor

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        attributes = read_attributes(self)
        attributes = dict(vars(self)) if attributes is None else attributes
        attributes.update(func=self.func, inverse_func=self.inverse_func)
        # Slot state: loads through setattr, so the attributes stay inline (snapshot_pickling).
        return object.__new__, (preprocessing.TargetStandardScaler,), (None, attributes)


def _lean_step(step: Any) -> Any:
    """A River ``TargetStandardScaler`` as a :class:`LeanTargetStandardScaler` holding the same values."""
    if type(step) is not preprocessing.TargetStandardScaler:
        return step
    attributes = read_attributes(step)
    attributes = dict(vars(step)) if attributes is None else attributes
    lean = LeanTargetStandardScaler.__new__(LeanTargetStandardScaler)
    for name, value in attributes.items():
        if name not in ("func", "inverse_func"):
            setattr(lean, name, value)
    return lean


def _inline_copy(step: Any) -> Any:
    """``step`` if it keeps its attributes inline, else an equal copy that does (and ``step`` is dropped).

    River's ``StandardScaler.__setstate__`` fills a real ``__dict__`` (~64 B more per model than as built); a
    step loaded that way is rebuilt attribute by attribute, in the same order, sharing the same values.
    """
    kind = type(step)
    if not kind.__flags__ & MANAGED_DICT or getattr(kind, "__setstate__", None) is None:
        return step  # slots, or no __setstate__ of its own: loaded as built
    if read_attributes(step) is not None:
        return step  # still inline
    copy = object.__new__(kind)  # as pickle made it (River's classes have no __new__ of their own)
    for name, value in vars(step).items():
        object.__setattr__(copy, name, value)
    return copy


#: Immutable parts of pipelines' plans (argument-name sets, per-method dicts), one object per distinct value.
_SHARED_PARTS: dict[Any, Any] = {}


def _shared_part(part: Any) -> Any:
    return _SHARED_PARTS.setdefault(part, part) if isinstance(part, frozenset) else part


#: The settings of the linear recipe, shared by all its models (``_linear``).
LINEAR_LOSS = _shared(SquaredLoss(), "LINEAR_LOSS")
LINEAR_INITIALIZER = _shared(ZerosInitializer(), "LINEAR_INITIALIZER")
LINEAR_INTERCEPT_RATE = _shared(ConstantRate(0.0), "LINEAR_INTERCEPT_RATE")
LINEAR_RATE = _shared(SharedInverseScaling(0.02, power=0.5, floor=1e-4), "LINEAR_RATE")


def _linear() -> OnlineRegressor:
    # Chosen by replaying the sample trades file through tickcast evaluate (issue 7):
    # - TargetStandardScaler makes the step size unit-free: SPY moves about 0.3 bps a tick and BAC 2.4,
    #   and one learning rate on raw bps suited neither (v1 scored skill -0.79 on SPY).
    # - Squared loss, because RMSE is the target and flagged prints never reach learning anyway;
    #   Huber on the standardised target scored no better.
    # - A decaying, floored learning rate: against a constant 3e-4 it lifted IBM from 0.057 to 0.067
    #   and SPY from 0.084 to 0.086, the others within 0.0003. Rates of 3e-3 and up lost skill everywhere.
    # - No intercept: returns have no usable mean at this horizon; learning one changed nothing measurable.
    return LeanPipeline(
        preprocessing.StandardScaler(),
        (
            "TargetStandardScaler",  # River's name for it, as before LeanTargetStandardScaler
            LeanTargetStandardScaler(
                regressor=linear_model.LinearRegression(
                    optimizer=optim.SGD(LINEAR_RATE),
                    loss=LINEAR_LOSS,
                    l2=0.0,
                    intercept_lr=LINEAR_INTERCEPT_RATE,
                    clip_gradient=10.0,
                    initializer=LINEAR_INITIALIZER,
                ),
            ),
        ),
    )


def _passive_aggressive() -> OnlineRegressor:
    return LeanPipeline(preprocessing.StandardScaler(), linear_model.PARegressor(C=0.01, mode=2, eps=0.1))


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "linear",
            "2",
            "StandardScaler | TargetStandardScaler(LinearRegression (SGD, squared loss, floored 1/sqrt(t) rate))",
            _linear,
        ),
        ModelSpec("pa", "2", "StandardScaler | PARegressor (passive-aggressive, C=0.01)", _passive_aggressive),
        ModelSpec("persistence", "1", "baseline: next return is 0", Persistence, warmup_ticks=0),
        ModelSpec("ew-mean", "2", "baseline: EW mean of past returns", EWMeanReturn, warmup_ticks=0),
        ModelSpec("mean-reversion", "2", "baseline: -0.3 x last non-zero return", MeanReversion, warmup_ticks=0),
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


def recipes() -> str:
    """This release's recipes and their versions, as a forecaster's state signature and a model selection name them:
    a state restored from a release with others is adopted once, and its selection fitted to this one
    (:func:`tickcast.predictor.selection.restored.fit_to_release`). Interned: every symbol holds it.

    >>> recipes()
    'recipes=linear:2,pa:2,persistence:1,ew-mean:2,mean-reversion:2'
    """
    return sys.intern("recipes=" + ",".join(f"{name}:{spec.version}" for name, spec in MODELS.items()))


def versions_of(signature: str) -> dict[str, str]:
    """The recipe versions a :func:`recipes` signature names.

    >>> versions_of("recipes=linear:2,mean-reversion:1")
    {'linear': '2', 'mean-reversion': '1'}
    """
    pairs = (entry.rpartition(":") for entry in signature.removeprefix("recipes=").split(",") if entry)
    return {name: version for name, _, version in pairs}


def build_model(name: str) -> OnlineRegressor:
    """A fresh, untrained instance of the named pipeline.

    >>> build_model("linear").predict_one({"r1_bps": 1.0})
    0.0
    """
    return model_spec(name).build()
