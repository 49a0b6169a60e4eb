"""A local supervisor: N predictor worker processes on this machine, started and stopped by PID."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from tickcast.common.memory import ALLOCATOR_ENV
from tickcast.common.processes import free_port, spawn, stop

log = structlog.get_logger("tickcast.supervisor")


@dataclass(slots=True)
class WorkerProcess:
    worker_id: str
    web_port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def worker_env(shared: dict[str, str], worker_id: str, web_port: int) -> dict[str, str]:
    """One worker's environment: the shared one, its own id and port, and the allocator settings unless overridden.

    >>> env = worker_env({"TICKCAST_MODEL": "ewma"}, "w-1", 6067)
    >>> env["TICKCAST_WORKER_ID"], env["TICKCAST_WEB_PORT"], env["MALLOC_ARENA_MAX"]
    ('w-1', '6067', '2')
    >>> worker_env({"MALLOC_ARENA_MAX": "8"}, "w-1", 6067)["MALLOC_ARENA_MAX"]
    '8'
    """
    # Fewer malloc arenas keep a worker's RSS near what it holds (see tickcast.common.memory).
    return {**ALLOCATOR_ENV, **shared, "TICKCAST_WORKER_ID": worker_id, "TICKCAST_WEB_PORT": str(web_port)}


@dataclass
class WorkerPool:
    """Starts ``tickcast worker`` children with a shared environment; each gets its own id, web port and log.

    ``env`` carries the ``TICKCAST_*`` settings every worker shares (bootstrap servers, topics, group).
    """

    env: dict[str, str]
    log_dir: Path
    name_prefix: str = "worker"
    workers: list[WorkerProcess] = field(default_factory=list)
    _started: int = 0

    def start_one(self) -> WorkerProcess:
        self._started += 1
        worker_id = f"{self.name_prefix}-{self._started}"
        port = free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{worker_id}.log"
        env = worker_env(self.env, worker_id, port)
        with open(log_path, "ab") as output:
            process = spawn([sys.executable, "-m", "tickcast", "worker"], env=env, output=output)
        worker = WorkerProcess(worker_id, port, process, log_path)
        self.workers.append(worker)
        log.info("worker_started", worker=worker_id, pid=process.pid, web_port=port)
        return worker

    def stop_one(self, worker: WorkerProcess | None = None, grace_s: float = 20.0) -> WorkerProcess | None:
        """Stop a worker gracefully (the newest by default); it leaves the group and its partitions move."""
        if worker is None:
            if not self.workers:
                return None
            worker = self.workers[-1]
        code = stop(worker.process, grace_s=grace_s)
        self.workers.remove(worker)
        log.info("worker_stopped", worker=worker.worker_id, pid=worker.process.pid, exit_code=code)
        return worker

    def scale(self, count: int) -> None:
        """Start or stop workers until ``count`` run."""
        self.workers = [w for w in self.workers if w.alive]
        while len(self.workers) < count:
            self.start_one()
        while len(self.workers) > count:
            self.stop_one()

    def stop_all(self, grace_s: float = 20.0) -> None:
        for worker in list(reversed(self.workers)):
            self.stop_one(worker, grace_s=grace_s)
