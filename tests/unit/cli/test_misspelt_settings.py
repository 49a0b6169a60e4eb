"""A misspelt ``TICKCAST_*`` variable is named on stderr instead of silently leaving the default in force."""

from __future__ import annotations

import pytest

from tickcast.cli.common import load_settings
from tickcast.common.settings import CommonSettings


def test_a_misspelt_variable_is_named_with_the_setting_it_resembles(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TICKCAST_SASL_USER", "bob")
    monkeypatch.setenv("TICKCAST_PARTITONS", "4")
    monkeypatch.setenv("TICKCAST_GATEWAY_PORT", "8080")  # another service's: not this one's business
    settings = load_settings(CommonSettings)
    err = capsys.readouterr().err
    assert "TICKCAST_SASL_USER is not a setting; did you mean TICKCAST_SASL_USERNAME?" in err
    assert "TICKCAST_PARTITONS is not a setting; did you mean TICKCAST_PARTITIONS?" in err
    assert "GATEWAY_PORT" not in err
    assert settings.sasl_username is None and settings.partitions == 8


def test_no_warning_for_settings_spelt_right(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TICKCAST_PARTITIONS", "4")
    assert load_settings(CommonSettings).partitions == 4
    assert "warning" not in capsys.readouterr().err
