"""Reading an autoscale config: TOML into an :class:`~tickcast.ops.autoscale.policy.AutoscaleConfig`.

The built-in default is ``default.toml`` beside this module, read with :mod:`importlib.resources` so that it
ships in the wheel and works under ``python -OO`` (which strips docstrings).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from datetime import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from tickcast.ops.autoscale.errors import ConfigError
from tickcast.ops.autoscale.policy import AutoscaleConfig, DynamicPolicy
from tickcast.ops.autoscale.schedule import DAY_NAMES, Schedule, Window

_DYNAMIC_KEYS = frozenset(DynamicPolicy.__dataclass_fields__)
_TOP_KEYS = frozenset({"timezone", "dynamic", "outside", "windows"})


def _time(value: Any, where: str) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f'{where}: expected a time like "09:30", got {value!r}')


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    return value


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    # TOML has inf and nan; neither is a rate, a duration or a cooldown (a nan one compares false: no cooldown).
    if not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _unknown(data: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}")


def parse_config(data: Mapping[str, Any], source: str = "config") -> AutoscaleConfig:
    """An :class:`AutoscaleConfig` from parsed TOML; every error names ``source`` and the key.

    >>> try:
    ...     parse_config({"windows": [{"name": "w", "start": "10:00", "end": "11:00", "mn": 2}]}, "a.toml")
    ... except ConfigError as exc:
    ...     print(exc)
    a.toml: windows[0]: unknown key(s) mn; allowed: days, end, max, min, name, start
    >>> parse_config({}).schedule.windows
    ()
    """
    try:
        _unknown(data, _TOP_KEYS, "top level")
        dynamic_data = data.get("dynamic", {})
        _unknown(dynamic_data, _DYNAMIC_KEYS, "[dynamic]")
        fields = DynamicPolicy.__dataclass_fields__
        values: dict[str, Any] = {
            k: _int(v, f"[dynamic] {k}") if fields[k].type == "int" else _float(v, f"[dynamic] {k}")
            for k, v in dynamic_data.items()
        }
        dynamic = DynamicPolicy(**values)
        outside = data.get("outside", {})
        _unknown(outside, frozenset({"min", "max"}), "[outside]")
        windows = []
        for i, raw in enumerate(data.get("windows", [])):
            where = f"windows[{i}]"
            _unknown(raw, frozenset({"name", "start", "end", "min", "max", "days"}), where)
            days = raw.get("days", list(DAY_NAMES[:5]))
            bad_days = [d for d in days if str(d).lower() not in DAY_NAMES]
            if bad_days or not days:
                raise ConfigError(f"{where}: days must be a non-empty list of {', '.join(DAY_NAMES)}; got {days!r}")
            windows.append(
                Window(
                    name=str(raw.get("name", f"window {i}")),
                    start=_time(raw.get("start"), f"{where} start"),
                    end=_time(raw.get("end"), f"{where} end"),
                    min_workers=_int(raw.get("min", 1), f"{where} min"),
                    max_workers=_int(raw["max"], f"{where} max") if "max" in raw else None,
                    days=frozenset(DAY_NAMES.index(str(d).lower()) for d in days),
                )
            )
        out_min = _int(outside.get("min", 1), "[outside] min")
        out_max = _int(outside["max"], "[outside] max") if "max" in outside else None
        if out_min < 0 or (out_max is not None and out_max < max(1, out_min)):
            raise ConfigError("[outside]: need 0 <= min <= max and max >= 1")
        schedule = Schedule(str(data.get("timezone", "America/New_York")), tuple(windows), out_min, out_max)
        return AutoscaleConfig(dynamic=dynamic, schedule=schedule)
    except (ConfigError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def load_config(path: Path | None) -> AutoscaleConfig:
    """The config in a TOML file, or the built-in default (``default.toml``) for None.

    >>> load_config(None) is DEFAULT_CONFIG
    True
    """
    if path is None:
        return DEFAULT_CONFIG
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, str(path))


#: The text of ``default.toml``: what ``tickcast autoscale`` uses without ``--schedule``, every key commented.
DEFAULT_CONFIG_TEXT = files("tickcast.ops.autoscale").joinpath("default.toml").read_text(encoding="utf-8")
DEFAULT_CONFIG = parse_config(tomllib.loads(DEFAULT_CONFIG_TEXT), "built-in default")
