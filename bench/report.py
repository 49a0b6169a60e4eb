"""Write ``latest.json`` and ``latest.md`` (one table with targets and pass/fail), and print a scenario's rows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench.core import Row, ScenarioResult


def format_value(value: float | None) -> str:
    """Readable numbers: thousands separators for big ones, three significant digits for small ones.

    >>> format_value(12345.6), format_value(0.01234), format_value(None), format_value(3)
    ('12,346', '0.0123', '-', '3')
    """
    if value is None:
        return "-"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def verdict(row: Row) -> str:
    if row.passed is None:
        return "n/a" if row.target else ""
    return "pass" if row.passed else "FAIL"


def print_scenario(result: ScenarioResult) -> None:
    inputs = ", ".join(f"{k}={v}" for k, v in result.inputs.items())
    print(f"\n== {result.title}\n   inputs: {inputs}", flush=True)
    width = max((len(r.metric) for r in result.rows), default=10)
    for row in result.rows:
        target = f"  target {row.target}: {verdict(row)}" if row.target else ""
        print(f"   {row.metric:<{width}}  {format_value(row.value):>10} {row.unit}{target}", flush=True)
    for note in result.notes:
        print(f"   note: {note}", flush=True)
    print(f"   ({result.seconds:.0f} s; load average {result.load_before[0]} -> {result.load_after[0]})", flush=True)


def write_json(path: Path, meta: dict[str, Any], results: list[ScenarioResult], errors: dict[str, str]) -> None:
    document = {
        "meta": meta,
        "scenarios": {r.name: r.to_json() for r in results},
        "errors": errors,
    }
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=2, default=str) + "\n")
    os.replace(temporary, path)


def machine_speed(meta: dict[str, Any]) -> str:
    """The CPU and how fast it ran Python at the start and end of the run (``bench.sampling.speed_probe_ms``).

    >>> machine_speed({"cpu_model": "AMD EPYC", "speed_probe_ms_before": 55.0, "speed_probe_ms_after": 57.5})
    'CPU: AMD EPYC. Speed probe (a fixed Python loop, CPU ms, lower is faster): 55.0 at start, 57.5 at end.'
    """
    after = meta.get("speed_probe_ms_after")
    return (
        f"CPU: {meta.get('cpu_model', '?')}. Speed probe (a fixed Python loop, CPU ms, lower is faster): "
        f"{meta['speed_probe_ms_before']} at start, {'-' if after is None else after} at end."
    )


def render_markdown(meta: dict[str, Any], results: list[ScenarioResult], errors: dict[str, str]) -> str:
    lines = [
        "# tickcast benchmark results",
        "",
        f"Run {meta['started_at']} ({meta['seconds']:.0f} s), commit `{meta['git']}`, {meta['cpus']} CPUs, "
        f"load average {meta['load_before'][0]} at start and {meta['load_after'][0]} at end (1 min), "
        f"Python {meta['python']}, services/ digest `{meta['services_digest']}`. Command: `{meta['command']}`.",
        "",
        "Numbers are from one run on this machine, which may be shared; compare ratios within a run.",
        "",
        *([machine_speed(meta), ""] if "speed_probe_ms_before" in meta else []),
        *([f"**Warning: {meta['warning']}.**", ""] if meta.get("warning") else []),
        "| scenario | metric | value | unit | target | result |",
        "|---|---|---:|---|---|---|",
    ]
    for result in results:
        for row in result.rows:
            lines.append(
                f"| {result.name} | {row.metric} | {format_value(row.value)} | {row.unit} | {row.target or ''} "
                f"| {verdict(row)} |"
            )
    for name, error in errors.items():
        first_line = error.strip().splitlines()[0] if error.strip() else "failed"
        lines.append(f"| {name} | did not run to the end | - | | | ERROR: {first_line} |")
    lines += ["", "## Inputs", ""]
    for result in results:
        inputs = ", ".join(f"{k}={v}" for k, v in result.inputs.items())
        lines.append(
            f"- **{result.name}** ({result.seconds:.0f} s, load {result.load_before[0]} -> {result.load_after[0]}): "
            f"{inputs}"
        )
        lines += [f"  - {note}" for note in result.notes]
    profile = next((r.metrics.get("profile") for r in results if r.metrics.get("profile")), None)
    if profile:
        lines += _profile_markdown(profile)
    charts = [chart for r in results for chart in r.charts]
    if charts:
        lines += ["", "## Charts", ""]
        lines += [f"![{Path(chart).stem}]({chart})" for chart in charts]
    return "\n".join(lines) + "\n"


def _profile_markdown(profile: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Where a worker's CPU goes (py-spy, on-CPU samples)",
        "",
        f"{profile['samples']} samples at {profile['rate_hz']} Hz over {profile['ticks']} ticks of a separate worker "
        f"drain. The worker used {profile['cpu_us_per_tick']} µs of CPU per tick (from /proc); µs/tick below spreads "
        f"that by share of samples. `TickHandler.handle` (all of the plain loop's per-tick work) is "
        f"{profile['handler_share']:.0%} of samples ({profile['handler_us_per_tick']} µs/tick).",
    ]
    tables = (
        ("layer of the innermost frame", "layers", 20),
        ("what the event loop was running (callback or task step)", "callbacks", 12),
        ("function (self time)", "top_self", 15),
        ("function (inclusive, entry point and event loop frames left out)", "top_inclusive", 15),
    )
    for title, key, count in tables:
        lines += ["", f"| {title} | share | µs/tick |", "|---|---:|---:|"]
        lines += [
            f"| `{row['function']}` | {row['share']:.1%} | {row['us_per_tick']} |" for row in profile[key][:count]
        ]
    return lines
