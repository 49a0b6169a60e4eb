"""The local worker pool: who owns which partitions, and a worker that died while others wait on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tickcast.ops.workers import WorkerExited, WorkerPool, WorkerProcess


def test_waiting_for_a_split_stops_at_once_naming_a_worker_that_has_exited(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])  # nosec B603 # this interpreter
    dead.wait(timeout=30)
    pool = WorkerPool(env={}, log_dir=tmp_path)
    pool.workers.append(WorkerProcess("worker-7", 1, dead, tmp_path / "worker-7.log"))
    with pytest.raises(WorkerExited, match=r"worker-7 exited with 3; see .*worker-7\.log"):
        pool.is_split(4)


def test_no_split_while_a_worker_does_not_answer(tmp_path: Path) -> None:
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # nosec B603
    try:
        pool = WorkerPool(env={}, log_dir=tmp_path)
        # Port 1 refuses connections: the worker's web server is not up yet.
        pool.workers.append(WorkerProcess("worker-1", 1, alive, tmp_path / "worker-1.log"))
        assert pool.is_split(4) is False
    finally:
        alive.kill()
        alive.wait()
