"""Every scenario's processes run issue 18's next-tick configuration unless ``--defaults``; the latency scenario
also runs its latency profile."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tickcast.predictor.settings import PredictorSettings

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.syspath_prepend(str(ROOT))  # bench is a folder of the repository, not an installed package
    import bench.__main__
    import bench.core

    return SimpleNamespace(main=bench.__main__, core=bench.core)


def test_the_latency_scenario_runs_the_profile_and_the_drains_do_not(bench: SimpleNamespace) -> None:
    options = bench.main.options_from(bench.main.parse_args(["--next-tick"]))
    assert options.settings("latency") == {**bench.core.NEXT_TICK_ENV, **bench.core.LATENCY_PROFILE_ENV}
    assert options.settings("throughput") == bench.core.NEXT_TICK_ENV


def test_make_bench_judges_the_targets_in_the_configuration_they_name(bench: SimpleNamespace) -> None:
    assert bench.main.options_from(bench.main.parse_args([])).settings("throughput") == bench.core.NEXT_TICK_ENV


def test_defaults_run_the_services_defaults(bench: SimpleNamespace) -> None:
    options = bench.main.options_from(bench.main.parse_args(["--defaults"]))
    assert options.settings("throughput") == {}
    assert options.configuration("peers") == "defaults"
    assert options.settings("latency") == bench.core.LATENCY_PROFILE_ENV


def test_next_tick_and_defaults_exclude_each_other(bench: SimpleNamespace) -> None:
    with pytest.raises(SystemExit):
        bench.main.parse_args(["--next-tick", "--defaults"])


def test_latency_defaults_turn_the_profile_off(bench: SimpleNamespace) -> None:
    options = bench.main.options_from(bench.main.parse_args(["--latency-defaults"]))
    assert options.settings("latency") == bench.core.NEXT_TICK_ENV


def test_a_set_setting_wins_over_the_profile(bench: SimpleNamespace) -> None:
    settings = bench.main.options_from(bench.main.parse_args(["--set", "TICKCAST_LINGER_MS=3"])).settings("latency")
    assert settings["TICKCAST_LINGER_MS"] == "3"
    assert settings["TICKCAST_FETCH_MAX_WAIT_MS"] == bench.core.LATENCY_PROFILE_ENV["TICKCAST_FETCH_MAX_WAIT_MS"]


def test_the_profile_is_valid_and_shorter_than_the_defaults(bench: SimpleNamespace) -> None:
    profile = bench.core.LATENCY_PROFILE_ENV
    profiled = PredictorSettings(**{k.removeprefix("TICKCAST_").lower(): v for k, v in profile.items()})
    defaults = PredictorSettings()
    assert profiled.fetch_max_wait_ms < defaults.fetch_max_wait_ms
    assert profiled.linger_ms < defaults.linger_ms


def test_the_results_name_what_the_latency_processes_ran(bench: SimpleNamespace) -> None:
    assert bench.core.Options().configuration("latency") == {
        **bench.core.NEXT_TICK_ENV,
        **bench.core.LATENCY_PROFILE_ENV,
    }
    assert bench.core.Options(next_tick=False, latency_profile=False).configuration("latency") == "defaults"


def test_the_target_rate_runs_three_rounds_and_quick_runs_one(bench: SimpleNamespace) -> None:
    # One round at 500/s is one sample of a machine whose speed drifts; the target reads the median of three.
    from bench.latency import rounds_at

    def rounds(*args: str) -> list[int]:
        options = bench.main.options_from(bench.main.parse_args(list(args)))
        return [rounds_at(options, rate) for rate in (200.0, 500.0, 1000.0)]

    assert rounds() == [1, 3, 1]
    assert rounds("--quick") == [1, 1, 1]
    assert rounds("--latency-rounds", "5") == [1, 5, 1]
