"""The worker's GIL switch interval: set from its setting, or left at Python's when the setting is 0."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tickcast.predictor.gil_tuning import set_switch_interval
from tickcast.predictor.settings import PredictorSettings


@pytest.fixture
def restored_interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    yield before
    sys.setswitchinterval(before)


def test_a_positive_interval_in_ms_becomes_the_interpreters(restored_interval: float) -> None:
    assert set_switch_interval(0.5) == restored_interval
    assert sys.getswitchinterval() == pytest.approx(0.0005)


def test_zero_keeps_the_interpreters_interval(restored_interval: float) -> None:
    set_switch_interval(0)
    assert sys.getswitchinterval() == restored_interval


def test_the_setting_is_bounded() -> None:
    with pytest.raises(ValueError):
        PredictorSettings(bootstrap_servers="k:9092", gil_switch_interval_ms=-1)
    assert PredictorSettings(bootstrap_servers="k:9092", gil_switch_interval_ms=0.5).gil_switch_interval_ms == 0.5
