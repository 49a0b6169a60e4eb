"""The model registry: a restored linear model shares its immutable settings with every other symbol's."""

from __future__ import annotations

import pickle
import types
from collections import OrderedDict

from river import optim, preprocessing

from tickcast.predictor import models, snapshot_pickling
from tickcast.predictor.inline_attributes import read_attributes
from tickcast.predictor.models import LeanTargetStandardScaler, build_model


def _regressor(model: object) -> object:
    return model.steps["TargetStandardScaler"].regressor  # type: ignore[attr-defined]


def test_a_restored_linear_model_shares_its_settings_and_keeps_its_state() -> None:
    model = build_model("linear")
    for i in range(50):
        model.learn_one({"r1_bps": float(i % 3), "ewm_fast_bps": 0.5}, float(i % 5) - 2.0)
    restored = pickle.loads(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    regressor = _regressor(restored)
    assert regressor.loss is models.LINEAR_LOSS  # type: ignore[attr-defined]
    assert regressor.initializer is models.LINEAR_INITIALIZER  # type: ignore[attr-defined]
    assert regressor.intercept_lr is models.LINEAR_INTERCEPT_RATE  # type: ignore[attr-defined]
    assert regressor.optimizer.lr is models.LINEAR_RATE  # type: ignore[attr-defined]
    # The optimizer holds the step count: it is the model's own.
    assert regressor.optimizer is not _regressor(model).optimizer  # type: ignore[attr-defined]
    assert regressor.optimizer.n_iterations == 50  # type: ignore[attr-defined]
    x = {"r1_bps": 1.0, "ewm_fast_bps": -0.5}
    assert restored.predict_one(x) == model.predict_one(x)


def test_a_setting_pickled_by_value_before_still_restores() -> None:
    # Snapshots written before the settings were shared hold River's own objects.
    old = optim.SGD(optim.schedulers.Constant(0.01))
    assert pickle.loads(pickle.dumps(old)).lr.learning_rate == 0.01
    fresh = models.ConstantRate(0.3)  # not a registered shared setting: pickled by value
    assert pickle.loads(pickle.dumps(fresh)).learning_rate == 0.3


def test_pipelines_share_their_plan_and_snapshots_leave_it_out() -> None:
    x = {"r1_bps": 1.0, "ewm_fast_bps": -0.5}
    first, second = build_model("linear"), build_model("linear")
    for model in (first, second):
        model.learn_one(x, 1.0)
    plans = [model._plan for model in (first, second)]  # type: ignore[attr-defined]
    assert plans[0][0][3] is plans[1][0][3] and plans[0][1][3] is plans[1][1][3]
    assert first._last_step_params is second._last_step_params  # type: ignore[attr-defined]
    restored = pickle.loads(pickle.dumps(first, protocol=pickle.HIGHEST_PROTOCOL))
    assert restored._plan is None  # type: ignore[attr-defined]
    assert restored.predict_one(x) == first.predict_one(x)
    assert restored._last_step_params is first._last_step_params  # type: ignore[attr-defined]


def test_pipeline_steps_are_a_plain_dict_built_restored_and_from_an_older_snapshot() -> None:
    model = build_model("linear")
    for t in range(30):
        model.learn_one({"r1_bps": float(t % 5 - 2)}, 0.1 * (t % 3 - 1))
    restored = pickle.loads(snapshot_pickling.dumps(model))  # nosec B301 # pickled just above
    assert type(model.steps) is dict and type(restored.steps) is dict  # ~0.2 KB less per model than OrderedDict
    assert list(restored.steps) == ["StandardScaler", "TargetStandardScaler"]
    older = pickle.loads(pickle.dumps(model))  # nosec B301
    older.steps = OrderedDict(older.steps)  # as pipelines pickled before held them
    assert type(pickle.loads(snapshot_pickling.dumps(older)).steps) is dict  # nosec B301 # its next snapshot
    assert restored.predict_one({"r1_bps": 1.0}) == model.predict_one({"r1_bps": 1.0})


def _bound_methods_in(model: object) -> list[str]:
    """Bound methods a model's objects hold (the scalers and the regressor, one level down)."""
    found = []
    for step in [*model.steps.values(), model.steps["TargetStandardScaler"].regressor]:  # type: ignore[attr-defined]
        found += [name for name, value in read_attributes(step).items() if isinstance(value, types.MethodType)]
    return found


def test_a_linear_model_holds_no_bound_method_of_its_own_built_restored_or_from_an_older_snapshot() -> None:
    # River's TargetStandardScaler keeps two bound methods of itself: ~160 B and a reference cycle per model.
    model = build_model("linear")
    for t in range(30):
        model.learn_one({"r1_bps": float(t % 5 - 2)}, 0.1 * (t % 3 - 1))
    data = snapshot_pickling.dumps(model)
    assert b"LeanTargetStandardScaler" not in data  # pickled as River's class: older workers load it
    restored = pickle.loads(data)  # nosec B301 # pickled just above
    older = pickle.loads(data)  # nosec B301
    older.steps["TargetStandardScaler"] = preprocessing.TargetStandardScaler(  # as models were built before
        regressor=older.steps["TargetStandardScaler"].regressor
    )
    reloaded = pickle.loads(snapshot_pickling.dumps(older))  # nosec B301 # its next snapshot
    assert [_bound_methods_in(m) for m in (model, restored, reloaded)] == [[], [], []]
    assert type(reloaded.steps["TargetStandardScaler"]) is LeanTargetStandardScaler
    assert restored.predict_one({"r1_bps": 1.0}) == model.predict_one({"r1_bps": 1.0})
