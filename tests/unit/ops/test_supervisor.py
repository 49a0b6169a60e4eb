"""The supervisor's readiness probe of its workers, and what its restarts of a crashing one leave behind."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import tickcast
from tests.unit.ops.not_http import ssh_like_port
from tickcast.ops.control import LOG_DIR
from tickcast.ops.supervisor import _answers, _Supervision
from tickcast.ops.workers import WorkerProcess
from tickcast.testing.waiting import wait_for


def test_a_worker_port_that_does_not_speak_http_is_not_ready() -> None:
    # free_port() hands out a port that another program may take before the worker binds it; what answers
    # there is not the worker, and the supervisor's loop must go on rather than stop every worker.
    with ssh_like_port() as port:
        assert _answers(port) is False, "a non-HTTP answer is not a ready worker"


def has_exited(worker: WorkerProcess) -> Callable[[], bool]:
    return lambda: not worker.alive


def test_a_crash_looping_worker_leaves_a_bounded_number_of_files(tmp_path: Path) -> None:
    # Each restart started "worker-<n+1>": a new log file (and a new data directory) per crash, for ever.
    env = {"PYTHONPATH": str(Path(tickcast.__file__).parents[1]), "TICKCAST_MODEL": "no-such-model"}
    supervision = _Supervision(tmp_path, env, desired=1, stop_grace_s=5.0, name_prefix="worker")
    never = threading.Event()
    try:
        for crash in range(4):
            supervision.step(never)  # reaps the crashed worker, if any; its restart waits for the back-off
            supervision.restart_at = 0.0  # no back-off: the test counts files, not waits
            supervision.step(never)
            (worker,) = supervision.local.workers
            wait_for(has_exited(worker), 30, f"worker start {crash + 1} to exit on its bad configuration")
        supervision.step(never)  # reaps the last one
    finally:
        supervision.stop_all()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert supervision.restarts == 4
    assert len(files) <= 3, f"4 crashes of one worker left {files}"
    assert "unknown model 'no-such-model'" in (tmp_path / LOG_DIR / "worker-1.log").read_text()
