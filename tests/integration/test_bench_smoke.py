"""``python -m bench`` end to end with tiny sizes: it runs, its JSON has the expected shape, and its numbers agree.

No speed is asserted: that depends on the machine. What must hold anywhere: every number is finite and in a
sane range, derived numbers agree with what they are derived from, and each verdict follows from its value.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tickcast.testing.data import REPO_ROOT

pytestmark = pytest.mark.integration

TICKS = 1000
#: The throughput target the bench applies (bench/throughput.py); the smoke run checks its verdict, not the speed.
TARGET_WORKER_OVER_PLAIN = 0.9


@pytest.mark.long
def test_quick_throughput_writes_json_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "results"
    argv = [sys.executable, "-m", "bench", "--quick", "--only", "throughput", "--ticks", str(TICKS)]
    argv += ["--out", str(out), "--work-dir", str(tmp_path / "work")]
    # The bench starts its own broker and stops every process it started; run() kills it if it hangs.
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=200, check=False)
    assert done.returncode == 0, f"bench failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"

    document = json.loads((out / "latest.json").read_text())
    assert document["errors"] == {}
    assert document["meta"]["scenarios"] == ["throughput"]
    assert document["meta"]["cpus"] > 0 and len(document["meta"]["load_before"]) == 3
    scenario = document["scenarios"]["throughput"]
    assert {"name", "title", "inputs", "metrics", "rows", "seconds", "load_before", "load_after"} <= scenario.keys()
    assert scenario["inputs"]["backlog_ticks"] == TICKS
    # Issue 18's targets are judged in the configuration they name; the services' defaults get one drain beside.
    assert scenario["inputs"]["configuration"]["TICKCAST_HORIZONS"] == "1t"

    metrics = scenario["metrics"]
    for kind in ("minimal", "plain", "worker", "worker_at_defaults"):
        run = metrics[kind]
        assert run["answered"] == TICKS, f"{kind}: {run['answered']} of {TICKS} ticks answered"
        assert run["duplicates"] == 0, f"{kind}: {run['duplicates']} ticks answered twice without a crash"
        for key in ("rate_per_s", "drain_s", "processes_cpu_s", "process_cpu_us_per_tick", "backlog_produce_s"):
            assert math.isfinite(run[key]) and run[key] > 0, f"{kind}.{key} = {run[key]!r}"
        assert run["broker_cpu_s"] >= 0 and run["broker_cores"] >= 0
        assert sum(run["ticks_per_partition"].values()) == TICKS
        # Derived numbers agree with their parts (both sides are rounded in the JSON, hence the tolerance).
        assert math.isclose(run["rate_per_s"], run["answered"] / run["drain_s"], rel_tol=0.02), run
        per_tick_us = run["processes_cpu_s"] / run["answered"] * 1e6
        assert math.isclose(run["process_cpu_us_per_tick"], per_tick_us, rel_tol=0.02, abs_tol=10), run
        # A tick costs microseconds to milliseconds of CPU; outside that, a unit is wrong.
        assert 1 <= run["process_cpu_us_per_tick"] <= 100_000, f"{kind}: {run['process_cpu_us_per_tick']} µs/tick"
    ratio = metrics["worker_over_plain"]
    # --quick drains one round, so the median of the rounds' ratios is that round's.
    assert metrics["worker_over_plain_by_round"] == [ratio]
    assert ratio == round(metrics["worker"]["rate_per_s"] / metrics["plain"]["rate_per_s"], 3)
    assert 0.05 <= ratio <= 20, f"worker / plain = {ratio}: one of the two rates is off by a unit"

    rows = {row["metric"]: row for row in scenario["rows"]}
    target = rows["worker / plain"]
    assert (target["value"], target["target"]) == (ratio, f">= {TARGET_WORKER_OVER_PLAIN:g}")
    assert target["passed"] is (ratio >= TARGET_WORKER_OVER_PLAIN), f"verdict {target['passed']} for {ratio}"
    for row in rows.values():
        value = row["value"]
        assert value is None or (math.isfinite(value) and value >= 0), row

    markdown = (out / "latest.md").read_text()
    verdict = "pass" if target["passed"] else "FAIL"
    expected = f"| throughput | worker / plain | {ratio:.3g} | x | >= {TARGET_WORKER_OVER_PLAIN:g} | {verdict} |"
    assert expected in markdown


def test_quick_scaling_drains_with_each_worker_count(tmp_path: Path) -> None:
    out = tmp_path / "results"
    argv = [sys.executable, "-m", "bench", "--quick", "--only", "scaling", "--workers", "1,2", "--ticks", str(TICKS)]
    argv += ["--out", str(out), "--work-dir", str(tmp_path / "work"), "--no-charts"]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=230, check=False)
    assert done.returncode == 0, f"bench failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"

    scenario = json.loads((out / "latest.json").read_text())["scenarios"]["scaling"]
    assert scenario["inputs"]["workers"] == [1, 2]
    by_workers = scenario["metrics"]["by_workers"]
    assert sorted(by_workers, key=int) == ["1", "2"]
    assert by_workers["1"]["speedup"] == 1.0
    for count, run in by_workers.items():
        assert math.isfinite(run["rate_per_s"]) and run["rate_per_s"] > 0, (count, run)
        assert 0 < run["largest_share"] <= 1 and run["skew_bound"] >= 1, (count, run)
        assert run["limit"] in ("none",) or run["limit"].startswith(("cores", "key skew")), (count, run)
    assert by_workers["2"]["speedup"] == round(by_workers["2"]["rate_per_s"] / by_workers["1"]["rate_per_s"], 3)
