"""The local supervisor loop: keep the requested number of predictor workers running on this machine.

``tickcast supervise`` runs :func:`run_supervisor`. It follows ``desired.json`` and reports in ``status.json``
(the protocol is in :mod:`tickcast.ops.control`); the worker processes themselves are a
:class:`~tickcast.ops.workers.WorkerPool`.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import structlog

from tickcast.ops.control import (
    LOG_DIR,
    STATUS_FILE,
    hold_state_dir,
    read_desired,
    write_desired,
    write_json_atomic,
)
from tickcast.ops.status import SupervisorStatus, WorkerStatus
from tickcast.ops.workers import WorkerPool, WorkerProcess

log = structlog.get_logger("tickcast.supervisor")

#: Longest pause between restarts of crashing workers; a bad configuration must not become a fork loop.
MAX_RESTART_BACKOFF_S = 30.0


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5):  # nosec B310 # fixed http URL
            return True
    # HTTPException: not the worker answers there (free_port's port taken by another program before it bound it).
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError):
        return False


def _id_order(worker_id: str) -> tuple[int, str]:
    """Sort key of worker ids: by their number, so worker-2 comes before worker-10.

    >>> sorted(["worker-10", "worker-2"], key=_id_order)
    ['worker-2', 'worker-10']
    """
    number = worker_id.rpartition("-")[2]
    return (int(number) if number.isdigit() else 0, worker_id)


class _Supervision:
    """The state of one supervisor run: its workers, readiness, restart backoff and the request it follows."""

    def __init__(
        self, state_dir: Path, env: dict[str, str], desired: int, stop_grace_s: float, name_prefix: str
    ) -> None:
        self.state_dir = state_dir
        self.local = WorkerPool(env=env, log_dir=state_dir / LOG_DIR, name_prefix=name_prefix)
        self.desired = desired
        self.request_id: str | None = None
        self.stop_grace_s = stop_grace_s
        self.ready: set[str] = set()
        self.restarts = 0
        self.backoff_s = 0.0
        self.restart_at = 0.0
        self.vacant: set[str] = set()
        """Ids of workers that exited or were stopped: a replacement takes one, so a crash loop or scaling up
        and down reuses ids, logs and data directories instead of leaving one more of each every time."""

    def step(self, stop_event: threading.Event) -> None:
        wanted = read_desired(self.state_dir)
        if wanted is not None and (wanted[0], wanted[1]) != (self.desired, self.request_id):
            self.desired, self.request_id = wanted
            log.info("desired_workers", workers=self.desired, request_id=self.request_id)
        self._reap()
        missing = self.desired - len(self.local.workers)
        if missing > 0 and time.monotonic() >= self.restart_at:
            for _ in range(missing):
                reused = min(self.vacant, key=_id_order, default=None)
                if reused is not None:
                    self.vacant.remove(reused)
                self.local.start_one(worker_id=reused)
        for worker in self.local.workers:
            if worker.worker_id not in self.ready and worker.alive and _answers(worker.web_port):
                self.ready.add(worker.worker_id)
                log.info("worker_ready", worker=worker.worker_id, pid=worker.process.pid, web_port=worker.web_port)
        if self.backoff_s and len(self.ready) == self.desired == len(self.local.workers):
            self.backoff_s = 0.0
        self.write("running")
        while len(self.local.workers) > self.desired and not stop_event.is_set():
            # One at a time, with a status after each, so `scale` can show progress of a slow graceful stop.
            stopped = self.local.stop_one(grace_s=self.stop_grace_s)
            if stopped is not None:
                self.ready.discard(stopped.worker_id)
                self.vacant.add(stopped.worker_id)
            self.write("running")

    def _reap(self) -> None:
        for worker in [w for w in self.local.workers if not w.alive]:
            self.local.workers.remove(worker)
            self.ready.discard(worker.worker_id)
            self.vacant.add(worker.worker_id)
            self.restarts += 1
            self.backoff_s = min(MAX_RESTART_BACKOFF_S, max(1.0, self.backoff_s * 2))
            self.restart_at = time.monotonic() + self.backoff_s
            log.warning(
                "worker_exited",
                worker=worker.worker_id,
                pid=worker.process.pid,
                exit_code=worker.process.returncode,
                restart_in_s=self.backoff_s,
                log=str(worker.log_path),
            )

    def status(self, state: str) -> SupervisorStatus:
        workers = tuple(self._worker_status(w) for w in self.local.workers if w.alive)
        return SupervisorStatus(
            pid=os.getpid(),
            state=state,
            updated_at=datetime.now(UTC).isoformat(),
            desired=self.desired,
            request_id=self.request_id,
            running=len(workers),
            ready=sum(w.ready for w in workers),
            restarts=self.restarts,
            workers=workers,
        )

    def _worker_status(self, worker: WorkerProcess) -> WorkerStatus:
        return WorkerStatus(
            worker.worker_id, worker.process.pid, worker.web_port, worker.worker_id in self.ready, str(worker.log_path)
        )

    def write(self, state: str) -> None:
        write_json_atomic(self.state_dir / STATUS_FILE, self.status(state).to_dict())

    def stop_all(self) -> None:
        self.write("stopping")
        self.local.stop_all(grace_s=self.stop_grace_s)
        self.ready.clear()
        self.write("stopped")


def run_supervisor(
    state_dir: Path,
    env: dict[str, str],
    stop_event: threading.Event,
    initial_workers: int | None = None,
    poll_interval_s: float = 0.5,
    stop_grace_s: float = 20.0,
    name_prefix: str = "worker",
) -> None:
    """Keep the requested number of workers running until ``stop_event`` is set; then stop them all.

    ``env`` is every worker's environment (``TICKCAST_*`` settings). The count comes from ``initial_workers``,
    else an earlier ``desired.json``, else 1; afterwards from ``desired.json`` (see :func:`request_scale`).
    Crashed workers are replaced, after a back-off that doubles per crash up to 30 s.
    Raises :class:`SupervisorAlreadyRunning` if another supervisor holds ``state_dir``.
    """
    state_dir = Path(state_dir)
    with hold_state_dir(state_dir):
        if initial_workers is not None:
            write_desired(state_dir, initial_workers)
        earlier = read_desired(state_dir)
        supervision = _Supervision(state_dir, env, earlier[0] if earlier else 1, stop_grace_s, name_prefix)
        log.info("supervisor_started", state_dir=str(state_dir), workers=supervision.desired, pid=os.getpid())
        try:
            while not stop_event.is_set():
                supervision.step(stop_event)
                stop_event.wait(poll_interval_s)
        finally:
            supervision.stop_all()
            log.info("supervisor_stopped", state_dir=str(state_dir), restarts=supervision.restarts)
