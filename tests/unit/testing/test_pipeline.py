"""A pipeline's environment and failure messages, without a broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tickcast.ops.workers import WorkerPool, WorkerProcess
from tickcast.testing.pipeline import SESSION_TIMEOUT_S, Pipeline


def test_children_get_the_runs_settings_not_the_developers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TICKCAST_MODEL", "ewma")
    monkeypatch.setenv("TICKCAST_SNAPSHOT_KEY", "from-the-shell")
    monkeypatch.setenv("F_DATADIR", "/somewhere")
    monkeypatch.setenv("HARNESS_TEST_KEEP", "1")
    env = Pipeline("b:1", "u1", tmp_path, extra_env={"TICKCAST_SNAPSHOT_EVERY_S": "1"}).env()
    assert env["TICKCAST_MODEL"] == "linear"
    assert "TICKCAST_SNAPSHOT_KEY" not in env and "F_DATADIR" not in env
    assert env["HARNESS_TEST_KEEP"] == "1"
    assert env["TICKCAST_SNAPSHOT_EVERY_S"] == "1"
    assert float(env["TICKCAST_SESSION_TIMEOUT_S"]) == SESSION_TIMEOUT_S


def test_a_dead_worker_fails_with_its_exit_code_and_log(tmp_path: Path) -> None:
    pipeline = Pipeline("b:1", "u1", tmp_path)
    log_path = tmp_path / "w-1.log"
    log_path.write_text("Traceback: boom\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait(timeout=30)
    pipeline.pool = WorkerPool(env={}, log_dir=tmp_path, workers=[WorkerProcess("w-1", 0, process, log_path)])
    with pytest.raises(AssertionError) as failure:
        pipeline.check_workers_alive()
    message = str(failure.value)
    assert "worker w-1 exited with code 3" in message and "Traceback: boom" in message
