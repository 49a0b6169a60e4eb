"""The worker's collector settings: applied once after start-up, or left alone when switched off."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tickcast.predictor.gc_tuning import GEN0_THRESHOLD, tune_for_throughput
from tickcast.predictor.settings import PredictorSettings


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_tuning_freezes_start_up_objects_and_raises_the_young_threshold(restored_collector: None) -> None:
    before = gc.get_threshold()
    previous = tune_for_throughput(12_345)
    assert previous == before
    assert gc.get_threshold() == (12_345, before[1], before[2])
    assert gc.get_freeze_count() > 0


def test_zero_keeps_cpythons_collector_as_it_was(restored_collector: None) -> None:
    before = gc.get_threshold()
    tune_for_throughput(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_workers_tune_by_default_and_a_setting_switches_it_off() -> None:
    assert PredictorSettings(bootstrap_servers="k:9092").gc_gen0_threshold == GEN0_THRESHOLD
    assert PredictorSettings(bootstrap_servers="k:9092", gc_gen0_threshold=0).gc_gen0_threshold == 0
