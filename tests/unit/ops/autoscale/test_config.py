"""Autoscale config files: the built-in default (a packaged .toml), round trips, and errors that name the key."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from dataclasses import replace
from datetime import UTC, datetime, time
from importlib.resources import files
from pathlib import Path

import pytest

from tickcast.ops.autoscale.config import DEFAULT_CONFIG, DEFAULT_CONFIG_TEXT, load_config, parse_config
from tickcast.ops.autoscale.errors import ConfigError
from tickcast.ops.autoscale.policy import DynamicPolicy


def test_the_built_in_schedule_is_the_one_documented() -> None:
    windows = {w.name: w for w in DEFAULT_CONFIG.schedule.windows}
    assert DEFAULT_CONFIG.schedule.timezone == "America/New_York"
    warm, market, after = windows["pre-open warm-up"], windows["market hours"], windows["after hours"]
    assert (warm.start, warm.end, warm.min_workers, warm.max_workers) == (time(9), time(9, 30), 4, None)
    assert (market.start, market.end, market.min_workers, market.max_workers) == (time(9, 30), time(16), 4, 8)
    assert (after.start, after.end, after.min_workers, after.max_workers) == (time(16), time(20), 1, 2)
    assert all(w.days == frozenset(range(5)) for w in windows.values())


def test_config_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "autoscale.toml"
    path.write_text(
        'timezone = "Europe/London"\n'
        "[dynamic]\nper_worker_rate = 100\nscale_up_cooldown_s = 5\nmax_step_down = 3\n"
        "[outside]\nmin = 2\nmax = 3\n"
        '[[windows]]\nname = "open"\nstart = 08:00:00\nend = "16:30"\nmin = 5\ndays = ["Sat", "sun"]\n'
    )
    config = load_config(path)
    assert config.dynamic == replace(DynamicPolicy(), per_worker_rate=100.0, scale_up_cooldown_s=5.0, max_step_down=3)
    (window,) = config.schedule.windows
    assert (window.start, window.end, window.min_workers, window.days) == (time(8), time(16, 30), 5, frozenset({5, 6}))
    assert config.schedule.bounds_at(datetime(2024, 3, 9, 9, tzinfo=UTC)).min_workers == 5
    assert config.schedule.bounds_at(datetime(2024, 3, 8, 9, tzinfo=UTC)).max_workers == 3
    assert load_config(None) is DEFAULT_CONFIG


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[dynamic]\nper_worker_rat = 1\n", "unknown key(s) per_worker_rat"),
        ('[dynamic]\nper_worker_rate = "fast"\n', "[dynamic] per_worker_rate: expected a number"),
        ("[dynamic]\nmax_step_up = 1.5\n", "[dynamic] max_step_up: expected a whole number"),
        ("[dynamic]\ntarget_utilization = 0.95\n", "target_utilization (0.95)"),
        ("[dynamic]\nscale_up_cooldown_s = -1\n", "scale_up_cooldown_s must not be negative"),
        # TOML has inf and nan: a nan cooldown compared false with everything, so it never held a change back.
        ("[dynamic]\nscale_up_cooldown_s = nan\n", "[dynamic] scale_up_cooldown_s: expected a finite number, got nan"),
        ("[dynamic]\nscale_down_cooldown_s = inf\n", "[dynamic] scale_down_cooldown_s: expected a finite number"),
        ("[dynamic]\nper_worker_rate = inf\n", "[dynamic] per_worker_rate: expected a finite number, got inf"),
        ("[dynamic]\ntrend_window_s = +inf\n", "[dynamic] trend_window_s: expected a finite number"),
        ('[[windows]]\nstart = "9am"\nend = "10:00"\n', 'windows[0] start: expected a time like "09:30"'),
        ('[[windows]]\nname = "x"\nstart = "10:00"\nend = "09:00"\n', "window 'x': end 09:00:00 must be after start"),
        ('[[windows]]\nstart = "09:00"\nend = "10:00"\ndays = ["monday"]\n', "days must be a non-empty list"),
        ('[[windows]]\nstart = "09:00"\nend = "10:00"\nmin = 5\nmax = 2\n', "need 0 <= min <= max"),
        ("[outside]\nmin = 3\nmax = 1\n", "[outside]: need 0 <= min <= max"),
        ('timezone = "Mars/Olympus"\n', "unknown time zone 'Mars/Olympus'"),
        ("timezone = \n", "not valid TOML"),
    ],
)
def test_config_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_override_errors() -> None:
    with pytest.raises(ConfigError, match="--min must be at least 1"):
        DEFAULT_CONFIG.with_overrides(min_workers=0)
    with pytest.raises(ConfigError, match="--max must be at least 1 and at least --min"):
        DEFAULT_CONFIG.with_overrides(min_workers=4, max_workers=2)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        DEFAULT_CONFIG.with_overrides(cooldown=3)
    assert parse_config({}).dynamic == DynamicPolicy()


def test_the_built_in_default_is_the_packaged_toml_file() -> None:
    packaged = files("tickcast.ops.autoscale").joinpath("default.toml").read_text(encoding="utf-8")
    assert packaged == DEFAULT_CONFIG_TEXT
    assert parse_config(tomllib.loads(packaged), "default.toml") == DEFAULT_CONFIG


def test_the_built_in_default_loads_without_docstrings() -> None:
    # `python -OO` strips docstrings; the default config must not live in one.
    code = "from tickcast.ops.autoscale.config import DEFAULT_CONFIG; print(len(DEFAULT_CONFIG.schedule.windows))"
    result = subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "3"), result.stderr


def test_every_key_of_the_built_in_default_is_commented_where_it_first_appears() -> None:
    # The README says so: the file is the reference to copy from, so each key says what it means.
    table, first_lines = "", {}
    for line in DEFAULT_CONFIG_TEXT.splitlines():
        code = line.split("#", 1)[0].strip()  # no value in the file holds a '#'
        if code.startswith("["):
            table = code.strip("[]")
        elif "=" in code:
            first_lines.setdefault(f"{table}.{code.split('=')[0].strip()}".lstrip("."), line)
    parsed = tomllib.loads(DEFAULT_CONFIG_TEXT)
    keys = {k for k, v in parsed.items() if not isinstance(v, dict | list)}
    keys |= {f"{table}.{k}" for table in ("dynamic", "outside") for k in parsed[table]}
    keys |= {f"windows.{k}" for window in parsed["windows"] for k in window}
    assert set(first_lines) == keys, "the line reading above missed a key"
    uncommented = sorted(key for key, line in first_lines.items() if "#" not in line)
    assert not uncommented, f"keys without a comment in default.toml: {uncommented}"
