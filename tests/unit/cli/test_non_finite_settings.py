"""No float setting of any service takes inf or nan: each is the one-line configuration error at load.

A bound such as gt=0 alone lets inf through: TICKCAST_CONNECT_TIMEOUT_S=inf waited for a broker forever.
"""

from __future__ import annotations

import typing

import pytest
import typer

import tickcast.client.settings
import tickcast.gateway.settings
import tickcast.ops.settings
import tickcast.predictor.settings
import tickcast.producer.settings
import tickcast.subscriber.settings  # noqa: F401  # these imports define the classes walked below
from tickcast.cli.common import load_settings
from tickcast.common.security import KafkaClientSettings


def settings_classes(base: type[KafkaClientSettings] = KafkaClientSettings) -> list[type[KafkaClientSettings]]:
    """``base`` and every tickcast class below it (a test's own subclass is left out)."""
    below = [cls for sub in base.__subclasses__() for cls in settings_classes(sub)]
    return [base, *below] if base.__module__.startswith("tickcast.") else below


FLOAT_SETTINGS = [
    (cls, name)
    for cls in settings_classes()
    for name, field in cls.model_fields.items()
    if float in (field.annotation, *typing.get_args(field.annotation))
]


def test_the_float_settings_of_every_service_are_found() -> None:
    classes = {cls.__name__ for cls, _ in FLOAT_SETTINGS}
    assert {"PredictorSettings", "ProducerSettings", "GatewaySettings", "ClientSettings"} <= classes, classes
    found = {name for _, name in FLOAT_SETTINGS}
    assert {"connect_timeout_s", "memory_release_every_s", "gap_s", "schema_registry_timeout_s"} <= found, found


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
@pytest.mark.parametrize(("cls", "name"), FLOAT_SETTINGS, ids=lambda item: getattr(item, "__name__", item))
def test_no_float_setting_takes_an_infinity_or_nan(
    cls: type[KafkaClientSettings],
    name: str,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    variable = f"TICKCAST_{name.upper()}"
    monkeypatch.setenv(variable, value)
    with pytest.raises(typer.Exit) as refused:
        load_settings(cls)
    error = capsys.readouterr().err
    assert refused.value.exit_code == 2 and error.count("\n") == 1, error
    assert f"{variable}: Input should be a finite number (got '{value}')" in error, error
