"""``python -m bench`` end to end with tiny sizes: it runs, and its JSON has the expected shape.

No timing is asserted: the numbers depend on the machine. Only that they exist and are positive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tickcast.testing.data import REPO_ROOT

pytestmark = pytest.mark.integration

TICKS = 1000


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

    metrics = scenario["metrics"]
    for kind in ("plain", "worker"):
        run = metrics[kind]
        assert run["answered"] == TICKS, f"{kind}: {run['answered']} of {TICKS} ticks answered"
        for key in ("rate_per_s", "drain_s", "processes_cpu_s", "process_cpu_us_per_tick", "backlog_produce_s"):
            assert run[key] > 0, f"{kind}.{key} = {run[key]!r}"
        assert run["broker_cpu_s"] >= 0 and run["broker_cores"] >= 0
        assert sum(run["ticks_per_partition"].values()) == TICKS
    assert metrics["worker_over_plain"] > 0

    rows = {row["metric"]: row for row in scenario["rows"]}
    target = rows["worker / plain"]
    assert target["target"] == ">= 0.8" and target["passed"] in (True, False)
    assert all(row["value"] is None or row["value"] >= 0 for row in rows.values())

    markdown = (out / "latest.md").read_text()
    assert "| throughput | worker / plain |" in markdown
