"""A local supervisor: N predictor worker processes on this machine, started and stopped by PID."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from tickcast.common.memory import ALLOCATOR_ENV
from tickcast.common.processes import free_port, spawn, stop
from tickcast.ops.lag import fetch_stats

log = structlog.get_logger("tickcast.supervisor")


class WorkerExited(ChildProcessError):
    """A worker that should be running has exited (an OSError, so the command line reports it in one line)."""


#: Worker id -> the partitions it owns, as the workers' ``/stats`` say.
Assignment = dict[str, list[int]]


@dataclass(slots=True)
class WorkerProcess:
    worker_id: str
    web_port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def assignment_of(workers: Iterable[WorkerProcess], timeout_s: float = 2.0) -> Assignment | None:
    """Worker id -> the partitions it owns, from every worker's ``/stats``; None while one does not answer."""
    owned: Assignment = {}
    for worker in workers:
        stats = fetch_stats(f"http://127.0.0.1:{worker.web_port}/stats", timeout_s)
        if stats is None:
            return None
        owned[worker.worker_id] = sorted(stats.get("assigned_partitions", []))
    return owned


def split_once(assignment: Mapping[str, Sequence[int]], partitions: int) -> bool:
    """True when each of partitions ``0..partitions-1`` has exactly one owner and every owner has some.

    An owner with nothing has not finished joining; a partition owned twice is a rebalance in progress.

    >>> split_once({"w-1": [0, 2], "w-2": [1, 3]}, 4)
    True
    >>> split_once({"w-1": [0, 1], "w-2": [1, 2, 3]}, 4), split_once({"w-1": [0, 1, 2, 3], "w-2": []}, 4)
    (False, False)
    >>> split_once({"w-1": [0, 1]}, 4)
    False
    """
    owned = sorted(p for parts in assignment.values() for p in parts)
    return owned == list(range(partitions)) and all(assignment.values())


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

    def start_one(self, worker_id: str | None = None, **env: str) -> WorkerProcess:
        """Start one more worker, as ``worker_id`` (one no longer running) or a new id; ``env`` adds to or
        overrides the shared environment for this one only."""
        if worker_id is None:
            self._started += 1
            worker_id = f"{self.name_prefix}-{self._started}"
        port = free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{worker_id}.log"
        if log_path.exists():
            # The previous run of this id (often the crash that made this start) stays readable, one run deep.
            log_path.replace(log_path.with_name(f"{log_path.name}.1"))
        env = worker_env({**self.env, **env}, worker_id, port)
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

    def is_split(self, partitions: int) -> bool:
        """True once the running workers share ``partitions`` partitions, each owned once (see :func:`split_once`).

        Raises :class:`WorkerExited`, naming it and its log, if a worker has exited: waiting on would be vain.
        """
        for worker in self.workers:
            if not worker.alive:
                raise WorkerExited(f"{worker.worker_id} exited with {worker.process.returncode}; see {worker.log_path}")
        owned = assignment_of(self.workers)
        return owned is not None and split_once(owned, partitions)

    def stop_all(self, grace_s: float = 20.0) -> None:
        for worker in list(reversed(self.workers)):
            self.stop_one(worker, grace_s=grace_s)
