"""``tickcast demo``, the command behind ``make demo``, run as a user runs it: its own embedded broker, two
workers, a gateway and a feed; every tick answered, the dashboard serving while it runs, and no process left
once it has stopped.

Every process the demo starts inherits its environment, so a marker variable set for this run finds them all
in ``/proc``, including any that outlived the demo (their parent gone, they are reparented and easy to miss).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tickcast.common.processes import free_port
from tickcast.demo import DEMO_PARTITIONS
from tickcast.testing.environment import base_env
from tickcast.testing.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MARKER = "TICKCAST_DEMO_TEST_RUN"
#: The demo itself, the broker, two workers and the gateway.
PROCESSES_WHILE_RUNNING = 5
#: Short and light: the broker, two group joins and the drain are most of its time.
DEMO_ARGS = ("--seconds", "8", "--symbols", "8", "--rate", "100")
#: ``tickcast demo`` splits by default (tickcast.demo.DEMO_TOPOLOGY) where it can pin threads.
CAN_SPLIT = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
SUMMARY = re.compile(r"^ticks=(\d+) predictions=(\d+) dead_letters=(\d+) workers=2 latency_p50_ms=(\S+) ", re.MULTILINE)


def marked_processes(run: str) -> list[int]:
    """PIDs of live processes whose environment carries this run's marker (zombies have none left)."""
    needle = f"{MARKER}={run}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or a kernel thread
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def test_the_demo_answers_every_tick_serves_its_dashboard_and_leaves_no_process(tmp_path: Path) -> None:
    run, port, logs = uuid.uuid4().hex, free_port(), tmp_path / "logs"
    # A file, not a pipe: a child that outlived the demo would hold a pipe open, and reading it would hang.
    output_path = tmp_path / "demo.out"
    with open(output_path, "w") as output_file:
        demo = subprocess.Popen(  # nosec B603 # this interpreter running tickcast's demo
            [sys.executable, "-m", "tickcast", "demo", *DEMO_ARGS, "--gateway-port", str(port), "--log-dir", str(logs)],
            env={**base_env(), MARKER: run},
            stdout=output_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: len(marked_processes(run)) >= PROCESSES_WHILE_RUNNING,
            60,
            f"the demo's {PROCESSES_WHILE_RUNNING} processes (itself, broker, 2 workers, gateway)",
            check=lambda: _still_running(demo, output_path),
            diagnostics=lambda: f"marked now: {marked_processes(run)}",
        )
        symbols: list[str] = []

        def dashboard_knows_symbols() -> bool:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/v1/symbols", timeout=2)
            except httpx.HTTPError:
                return False
            symbols[:] = [row["symbol"] for row in answer.json()["symbols"]] if answer.status_code == 200 else []
            return len(symbols) > 0

        wait_for(
            dashboard_knows_symbols,
            60,
            "the demo's gateway to serve predictions",
            check=lambda: _still_running(demo, output_path),
        )
        if CAN_SPLIT:
            _check_split(run)
        demo.wait(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    output = output_path.read_text()
    assert demo.returncode == 0, output[-3000:]
    summary = SUMMARY.search(output)
    assert summary is not None, output[-3000:]
    ticks, predictions, dead_letters = map(int, summary.groups()[:3])
    assert ticks > 0 and predictions == ticks and dead_letters == 0, summary.group(0)
    # The feed starts once the workers share the partitions, so the view sees predictions live, not only
    # in the drain after the feed stops (then it has no latency to show: "nan").
    assert f"workers ready: {DEMO_PARTITIONS} partitions split in" in output, output[-3000:]
    assert summary.group(4) != "nan", summary.group(0)
    assert f"http://127.0.0.1:{port}/" in output
    assert f"topology={'split' if CAN_SPLIT else 'shared'}" in summary.string, output[-3000:]
    wait_for(
        lambda: not marked_processes(run),
        10,
        "every process the demo started to be gone after it exited",
        diagnostics=lambda: "\n".join(_describe(pid) for pid in marked_processes(run)),
    )


def _check_split(run: str) -> None:
    """The workers (every thread) on the last core; the demo, broker and gateway on the others."""
    last = max(os.sched_getaffinity(0))
    cores = {pid: _cores(pid) for pid in marked_processes(run)}
    workers = [pid for pid in cores if " -m tickcast worker" in _describe(pid)]
    placed = {_describe(pid): sorted(found) for pid, found in cores.items()}
    assert len(workers) == 2, placed
    assert all(cores[pid] == {last} for pid in workers), placed
    assert all(last not in found for pid, found in cores.items() if pid not in workers), placed


def _cores(pid: int) -> set[int]:
    found: set[int] = set()
    for tid in Path(f"/proc/{pid}/task").iterdir():
        try:
            found |= os.sched_getaffinity(int(tid.name))
        except (ProcessLookupError, OSError):  # a thread that ended meanwhile
            continue
    return found


def _still_running(demo: subprocess.Popen[bytes], output_path: Path) -> None:
    if demo.poll() is not None:
        raise AssertionError(f"the demo exited early with {demo.returncode}:\n{output_path.read_text()[-3000:]}")


def _describe(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return f"{pid}: gone"
    return f"{pid}: {argv.decode(errors='replace')}"
