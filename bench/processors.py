"""What turns a pipeline's ticks into predictions: tickcast workers, or the plain loop they are compared with.

Both are one or more processes in the pipeline's consumer group, started with the same ``TICKCAST_*``
environment and stopped by PID in the scenario's ``finally``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from abc import ABC, abstractmethod
from collections import defaultdict
from typing import IO, Any

from bench.core import BenchError
from bench.peers import venv as peers_venv
from tickcast.common.processes import spawn, stop
from tickcast.ops.workers import WorkerProcess
from tickcast.testing.data import REPO_ROOT
from tickcast.testing.pipeline import Pipeline
from tickcast.testing.registry_stub import CatalogueRegistry
from tickcast.testing.stats import Assignment, assignment_of, wait_for_split, worker_stats

OwnBuckets = dict[str, list[tuple[str, int]]]
#: The key of the per-tick own latency in :meth:`Processor.own_latency`.
PER_TICK = "per_tick"


def own_buckets(stats: dict[str, Any]) -> OwnBuckets:
    """The own-latency histograms of one process's ``/stats`` (or status file), by name.

    >>> own_buckets({"own_latency_buckets": [["0.001", 3]], "own_share_split": {"cpu": [["0.001", 1]]}})
    {'per_tick': [('0.001', 3)], 'cpu': [('0.001', 1)]}
    >>> list(own_buckets({"own_latency_buckets": [], "gc_pauses": {"gc_gen0": [["+Inf", 2]]}}))
    ['per_tick', 'gc_gen0']
    """
    named = {PER_TICK: stats["own_latency_buckets"], **stats.get("own_share_split", {}), **stats.get("gc_pauses", {})}
    return {name: [(str(le), int(count)) for le, count in buckets] for name, buckets in named.items()}


class Processor(ABC):
    """One or more processes in one consumer group that answer the pipeline's ticks."""

    kind: str

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    @abstractmethod
    def start(self, count: int = 1) -> None: ...

    @abstractmethod
    def assignment(self) -> Assignment | None:
        """Process id -> assigned partitions; None while some process does not answer yet."""

    @abstractmethod
    def handled(self) -> int | None:
        """Ticks handled so far by all processes; None while some process does not answer."""

    @abstractmethod
    def pids(self) -> dict[str, int]: ...

    def own_latency(self) -> OwnBuckets | None:
        """The processes' own latency (fetch returned → handed to the producer) as cumulative (le, count) buckets.

        Under :data:`PER_TICK` per tick; under ``wall``, ``cpu`` and ``waiting_for_cpu`` per batch, split as
        ``tickcast.predictor.own_share`` says (empty from a process that does not report the split); under
        ``gc_gen0``-``gc_gen2`` the collector's pauses (``tickcast.predictor.gc_pauses``).
        """
        return None

    @abstractmethod
    def check_alive(self) -> None:
        """Raise :class:`BenchError` if a process exited."""

    @abstractmethod
    def stop(self) -> None: ...

    def logs(self) -> str:
        return self.pipeline.worker_logs()

    def wait_ready(self, processes: int, timeout_s: float = 90.0) -> Assignment:
        """Wait until every partition is owned by exactly one of the ``processes`` processes, each owning some."""
        owners = f"{processes} {self.kind} process(es)"
        return wait_for_split(self.assignment, self.pipeline.partitions, owners, timeout_s, check=self.check_alive)


class WorkerSet(Processor):
    """``python -m tickcast worker`` children of the pipeline; progress from each one's ``/stats``."""

    kind = "worker"

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(pipeline)
        self._last_handled: dict[str, int] = {}

    @property
    def workers(self) -> list[WorkerProcess]:
        return self.pipeline.workers

    def start(self, count: int = 1) -> None:
        self.pipeline.start_workers(count)

    def assignment(self) -> Assignment | None:
        return assignment_of(self.workers)

    def handled(self) -> int | None:
        for worker in self.workers:
            stats = worker_stats(worker)
            if stats is not None:
                self._last_handled[worker.worker_id] = int(stats.get("ticks_in", 0))
        # A killed worker's last count stays in the sum: its ticks were handled (and maybe replayed).
        return sum(self._last_handled.values()) if self._last_handled else None

    def pids(self) -> dict[str, int]:
        return {w.worker_id: w.process.pid for w in self.workers}

    def own_latency(self) -> OwnBuckets | None:
        merged: dict[str, dict[str, int]] = defaultdict(dict)
        for worker in self.workers:
            stats = worker_stats(worker)
            if stats is None or "own_latency_buckets" not in stats:
                return None
            for name, buckets in own_buckets(stats).items():
                for le, count in buckets:
                    merged[name][le] = merged[name].get(le, 0) + count
        return {name: list(buckets.items()) for name, buckets in merged.items()}

    def check_alive(self) -> None:
        for worker in self.workers:
            if not worker.alive:
                raise BenchError(f"worker {worker.worker_id} exited with code {worker.process.returncode}")

    def kill(self, worker: WorkerProcess) -> None:
        """SIGKILL by PID (no goodbye to the group), then forget it."""
        worker.process.kill()
        worker.process.wait(timeout=10)
        self.workers.remove(worker)

    def stop(self) -> None:
        self.pipeline.stop(grace_s=15.0)


class PlainLoopProcess(Processor):
    """``python -m bench.plain_loop``: one confluent-kafka consume → handle → produce process."""

    kind = "plain"
    name = "plain-1"
    module = "bench.plain_loop"

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(pipeline)
        self.status_file = pipeline.log_dir / "plain-status.json"
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    def start(self, count: int = 1) -> None:
        if count != 1 or self.process is not None:
            raise BenchError("the plain loop runs as exactly one process")
        self.pipeline.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.pipeline.env()
        # `-m bench.plain_loop` must resolve wherever the bench was started from.
        python_path = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env.update(TICKCAST_WORKER_ID=self.name, PYTHONPATH=python_path, BENCH_STATUS_FILE=str(self.status_file))
        env.update(self.extra_env())
        self._output = open(self.pipeline.log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = spawn(self.command(), env=env, output=self._output)

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module, "--status-file", str(self.status_file)]

    def extra_env(self) -> dict[str, str]:
        return {}

    def _status(self) -> dict[str, Any] | None:
        try:
            loaded: dict[str, Any] = json.loads(self.status_file.read_text())
            return loaded
        except (OSError, json.JSONDecodeError):
            return None

    def assignment(self) -> Assignment | None:
        status = self._status()
        return None if status is None else {self.name: list(status["assigned"])}

    def handled(self) -> int | None:
        status = self._status()
        return None if status is None else int(status["ticks_in"])

    def own_latency(self) -> OwnBuckets | None:
        status = self._status()
        if status is None or "own_latency_buckets" not in status:
            return None
        return own_buckets(status)

    def pids(self) -> dict[str, int]:
        return {self.name: self.process.pid} if self.process is not None else {}

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(f"{self.module} exited with code {self.process.returncode}")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, grace_s=15.0)
        if self._output is not None:
            self._output.close()
            self._output = None


class MinimalLoopProcess(PlainLoopProcess):
    """``python -m bench.minimal_loop``: the same job written without tickcast's handler (the floor)."""

    kind = "minimal"
    name = "minimal-1"
    module = "bench.minimal_loop"


class PeerProcess(PlainLoopProcess):
    """One process of another stream processor calling tickcast's handler (``bench/peers``).

    It runs on the peers' own venv (:mod:`bench.peers.venv`), not on the bench's interpreter: the peers' pins
    would hold the project's libraries back. The bench's own processes (worker, plain, minimal) stay on it.
    In view 2 (``-user``) the bench serves it a Schema Registry, the catalogue's, for its framework's Avro serde.
    """

    def __init__(self, pipeline: Pipeline, kind: str, python: str | None = None) -> None:
        super().__init__(pipeline)
        self.kind = self.name = kind
        self.user = kind.endswith("-user")
        self.framework = kind.removesuffix("-user")
        self.python = python or str(peers_venv.python())
        self.registry: CatalogueRegistry | None = None

    def start(self, count: int = 1) -> None:
        if self.user and self.registry is None:
            self.registry = CatalogueRegistry()
        super().start(count)

    def extra_env(self) -> dict[str, str]:
        env = {"BENCH_PEER_VIEW": "user" if self.user else "handler"}
        if self.registry is not None:
            env["BENCH_PEER_REGISTRY_URL"] = self.registry.url
        return env

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            if self.registry is not None:
                self.registry.close()
                self.registry = None

    def command(self) -> list[str]:
        data = self.pipeline.log_dir / "data"
        if self.framework in ("quix", "quix-dict"):
            return [self.python, "-m", "bench.peers.quix_peer", "dict"]
        if self.framework == "quix-state":
            return [self.python, "-m", "bench.peers.quix_peer", "state"]
        if self.framework == "faust-naive":
            return [self.python, "-m", "bench.peers.faust_peer"]
        flow = [self.python, "-m", "bytewax.run", "bench.peers.bytewax_peer:flow"]
        if self.framework == "bytewax":
            return flow
        if self.framework == "bytewax-recovery":
            recovery = data / "bytewax-recovery"
            recovery.mkdir(parents=True, exist_ok=True)
            subprocess.run([self.python, "-m", "bytewax.recovery", str(recovery), "1"], check=True, timeout=60)  # nosec B603 # the peers' interpreter, fixed argv
            return [*flow, "--recovery-directory", str(recovery), "--snapshot-interval", "10", "--backup-interval", "0"]
        raise BenchError(f"unknown peer {self.kind!r}")


#: View 1: each framework calling tickcast's handler.
PEERS = ("quix", "bytewax", "bytewax-recovery", "faust-naive")
#: View 2: what a user of each framework would write (the recipe in the framework's own state).
USER_PEERS = ("quix-dict-user", "quix-state-user", "bytewax-user", "bytewax-recovery-user", "faust-naive-user")


def make_processor(kind: str, pipeline: Pipeline) -> Processor:
    if kind in PEERS or kind in USER_PEERS:
        return PeerProcess(pipeline, kind)
    if kind == "plain":
        return PlainLoopProcess(pipeline)
    if kind == "minimal":
        return MinimalLoopProcess(pipeline)
    if kind == "worker":
        return WorkerSet(pipeline)
    raise ValueError(f"unknown processor kind {kind!r}")
