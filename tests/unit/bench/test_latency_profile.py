"""The latency scenario's processes run issue 18's latency profile; the other scenarios run the defaults."""

from __future__ import annotations

from bench.__main__ import options_from, parse_args
from bench.core import LATENCY_PROFILE_ENV, NEXT_TICK_ENV, Options
from tickcast.predictor.settings import PredictorSettings


def test_the_latency_scenario_runs_the_profile_and_the_drains_do_not() -> None:
    options = options_from(parse_args(["--next-tick"]))
    assert options.settings("latency") == {**NEXT_TICK_ENV, **LATENCY_PROFILE_ENV}
    assert options.settings("throughput") == NEXT_TICK_ENV


def test_latency_defaults_turn_the_profile_off() -> None:
    assert options_from(parse_args(["--latency-defaults"])).settings("latency") == {}


def test_a_set_setting_wins_over_the_profile() -> None:
    options = options_from(parse_args(["--set", "TICKCAST_LINGER_MS=3"]))
    assert options.settings("latency")["TICKCAST_LINGER_MS"] == "3"
    assert (
        options.settings("latency")["TICKCAST_FETCH_MAX_WAIT_MS"] == LATENCY_PROFILE_ENV["TICKCAST_FETCH_MAX_WAIT_MS"]
    )


def test_the_profile_is_valid_and_shorter_than_the_defaults() -> None:
    profiled = PredictorSettings(**{k.removeprefix("TICKCAST_").lower(): v for k, v in LATENCY_PROFILE_ENV.items()})
    defaults = PredictorSettings()
    assert profiled.fetch_max_wait_ms < defaults.fetch_max_wait_ms
    assert profiled.linger_ms < defaults.linger_ms


def test_the_results_name_what_the_latency_processes_ran() -> None:
    assert Options().configuration("latency") == LATENCY_PROFILE_ENV
    assert Options(latency_profile=False).configuration("latency") == "defaults"
