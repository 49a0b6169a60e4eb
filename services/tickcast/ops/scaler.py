"""Local scaling backend: a supervisor loop that keeps N workers running, and the clients that steer it.

``tickcast supervise`` runs :func:`run_supervisor`; ``tickcast scale N`` and the autoscaler
(:func:`run_autoscaler`) talk to it only through files in its state directory, so they can run in
other processes (or after a restart of either side):

* ``desired.json``: ``{"workers": N, "request_id": ..., "requested_at": ...}``, written by :func:`request_scale`;
* ``status.json``: written by the supervisor after every change and every ``poll_interval_s``:
  ``{"pid", "state", "updated_at", "desired", "request_id", "running", "ready", "restarts",
  "workers": [{"id", "pid", "web_port", "ready", "log"}]}``; ``ready`` means the worker's web server answered;
* ``supervisor.lock``: held (``flock``) while a supervisor runs, so there is one per directory and a dead
  supervisor's leftover status is recognised as stale;
* ``logs/``: one log file per worker.

JSON files are replaced atomically (write a temporary file, then rename), so a reader never sees half of one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from confluent_kafka import KafkaException

from tickcast.ops.autoscale import (
    AutoscaleConfig,
    Decision,
    LagSample,
    ScalerState,
    decide,
    processing_rate,
    recent_samples,
)
from tickcast.ops.lag import LagReport
from tickcast.ops.workers import WorkerPool, WorkerProcess

log = structlog.get_logger("tickcast.scaler")

DESIRED_FILE = "desired.json"
STATUS_FILE = "status.json"
LOCK_FILE = "supervisor.lock"
LOG_DIR = "logs"
#: Longest pause between restarts of crashing workers; a bad configuration must not become a fork loop.
MAX_RESTART_BACKOFF_S = 30.0


class SupervisorNotRunning(Exception):
    """No supervisor holds the state directory, so nobody would act on a request."""


class SupervisorAlreadyRunning(Exception):
    """Another supervisor already runs on this state directory."""


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """One worker as the supervisor reports it."""

    id: str
    pid: int
    web_port: int
    ready: bool
    log: str

    @property
    def stats_url(self) -> str:
        """Its ``/stats`` page (workers listen on every interface, loopback included).

        >>> WorkerStatus("worker-1", 42, 6066, True, "w.log").stats_url
        'http://127.0.0.1:6066/stats'
        """
        return f"http://127.0.0.1:{self.web_port}/stats"


@dataclass(frozen=True, slots=True)
class SupervisorStatus:
    """The contents of ``status.json``.

    >>> s = SupervisorStatus.from_dict({"pid": 1, "state": "running", "updated_at": "t", "desired": 2,
    ...     "request_id": "r", "running": 1, "ready": 0, "restarts": 0,
    ...     "workers": [{"id": "w-1", "pid": 9, "web_port": 80, "ready": False, "log": "l"}]})
    >>> s.workers[0].id, s.converged(2), SupervisorStatus.from_dict(s.to_dict()) == s
    ('w-1', False, True)
    """

    pid: int
    state: str
    updated_at: str
    desired: int
    request_id: str | None
    running: int
    ready: int
    restarts: int
    workers: tuple[WorkerStatus, ...]

    def converged(self, workers: int, request_id: str | None = None) -> bool:
        """True when exactly ``workers`` run and all answer, after the supervisor saw ``request_id`` (if given)."""
        seen = request_id is None or self.request_id == request_id
        return seen and self.state == "running" and self.desired == workers == self.running == self.ready

    def describe(self) -> str:
        """One line for people.

        >>> SupervisorStatus(7, "running", "t", 1, None, 1, 1, 0, (WorkerStatus("w-1", 9, 80, True, "l"),)).describe()
        'supervisor pid 7 running: desired 1, running 1, ready 1, restarts 0; w-1 (pid 9, port 80, ready)'
        """
        workers = ", ".join(
            f"{w.id} (pid {w.pid}, port {w.web_port}, {'ready' if w.ready else 'starting'})" for w in self.workers
        )
        return (
            f"supervisor pid {self.pid} {self.state}: desired {self.desired}, running {self.running}, "
            f"ready {self.ready}, restarts {self.restarts}" + (f"; {workers}" if workers else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "state": self.state,
            "updated_at": self.updated_at,
            "desired": self.desired,
            "request_id": self.request_id,
            "running": self.running,
            "ready": self.ready,
            "restarts": self.restarts,
            "workers": [
                {"id": w.id, "pid": w.pid, "web_port": w.web_port, "ready": w.ready, "log": w.log} for w in self.workers
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SupervisorStatus:
        return cls(
            pid=int(data["pid"]),
            state=str(data["state"]),
            updated_at=str(data["updated_at"]),
            desired=int(data["desired"]),
            request_id=data.get("request_id"),
            running=int(data["running"]),
            ready=int(data["ready"]),
            restarts=int(data.get("restarts", 0)),
            workers=tuple(
                WorkerStatus(str(w["id"]), int(w["pid"]), int(w["web_port"]), bool(w["ready"]), str(w["log"]))
                for w in data.get("workers", [])
            ),
        )


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON in one step (temporary file in the same directory, then rename).

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> write_json_atomic(d / "x.json", {"a": 1}); read_json(d / "x.json")
    {'a': 1}
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None if it is missing or not an object.

    >>> read_json(Path("/nonexistent/status.json")) is None
    True
    """
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_desired(state_dir: Path, workers: int) -> str:
    """Ask the supervisor for ``workers`` workers; returns the request id its status will echo.

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> request_id = write_desired(d, 3); read_desired(d) == (3, request_id)
    True
    """
    if workers < 0:
        raise ValueError(f"worker count must not be negative, got {workers}")
    request_id = uuid.uuid4().hex
    write_json_atomic(
        state_dir / DESIRED_FILE,
        {"workers": workers, "request_id": request_id, "requested_at": datetime.now(UTC).isoformat()},
    )
    return request_id


def read_desired(state_dir: Path) -> tuple[int, str | None] | None:
    """``(workers, request_id)`` from ``desired.json``, or None if there is no usable request.

    >>> read_desired(Path("/nonexistent")) is None
    True
    """
    data = read_json(state_dir / DESIRED_FILE)
    if data is None or not isinstance(data.get("workers"), int) or data["workers"] < 0:
        return None
    return data["workers"], data.get("request_id")


def read_status(state_dir: Path) -> SupervisorStatus | None:
    """The supervisor's last status, or None if there is none (or it is unreadable).

    >>> read_status(Path("/nonexistent")) is None
    True
    """
    data = read_json(state_dir / STATUS_FILE)
    if data is None:
        return None
    try:
        return SupervisorStatus.from_dict(data)
    except (KeyError, TypeError, ValueError):
        return None


def supervisor_running(state_dir: Path) -> bool:
    """Whether a supervisor holds the state directory's lock (a crashed one releases it with its process).

    >>> supervisor_running(Path("/nonexistent"))
    False
    """
    try:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        # A shared probe: fails only while a supervisor holds the exclusive lock.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def request_scale(
    state_dir: Path,
    workers: int,
    timeout_s: float = 120.0,
    poll_s: float = 0.2,
    cancel: threading.Event | None = None,
) -> SupervisorStatus:
    """Ask the running supervisor for ``workers`` workers and wait until exactly that many run and answer.

    Raises :class:`SupervisorNotRunning` if no supervisor holds ``state_dir`` (or it exits meanwhile),
    TimeoutError naming the last status if the count is not reached by the deadline, and InterruptedError
    if ``cancel`` is set first. In both of the last cases the request stands: the supervisor keeps working on it.
    """
    if not supervisor_running(state_dir):
        raise SupervisorNotRunning(
            f"no supervisor is running on {state_dir} (start one with `tickcast supervise --state-dir {state_dir}`)"
        )
    request_id = write_desired(state_dir, workers)
    deadline = time.monotonic() + timeout_s
    status = None
    while True:
        status = read_status(state_dir)
        if status is not None and status.converged(workers, request_id):
            return status
        if not supervisor_running(state_dir):
            raise SupervisorNotRunning(f"the supervisor on {state_dir} exited before {workers} workers ran")
        seen = status.describe() if status else "no status written"
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{workers} workers were not running and ready within {timeout_s:.0f}s; last: {seen}")
        if cancel is not None and cancel.wait(poll_s):
            raise InterruptedError(f"stopped waiting for {workers} workers; last: {seen}")
        if cancel is None:
            time.sleep(poll_s)  # polling interval of a deadline loop


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5):
            return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextlib.contextmanager
def _exclusive(state_dir: Path, wait_s: float = 2.0) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by workers (O_CLOEXEC)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # A `scale` client's liveness probe holds a shared lock for an instant; only a supervisor keeps it.
                if time.monotonic() >= deadline:
                    status = read_status(state_dir)
                    raise SupervisorAlreadyRunning(
                        f"another supervisor runs on {state_dir}"
                        + (f" (pid {status.pid})" if status else "")
                        + "; use `tickcast scale N` to change its worker count"
                    ) from None
                time.sleep(0.05)  # polling interval of a deadline loop
        yield
    finally:
        os.close(fd)  # closing releases the lock


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

    def step(self, stop_event: threading.Event) -> None:
        wanted = read_desired(self.state_dir)
        if wanted is not None and (wanted[0], wanted[1]) != (self.desired, self.request_id):
            self.desired, self.request_id = wanted
            log.info("desired_workers", workers=self.desired, request_id=self.request_id)
        self._reap()
        missing = self.desired - len(self.local.workers)
        if missing > 0 and time.monotonic() >= self.restart_at:
            for _ in range(missing):
                self.local.start_one()
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
            self.write("running")

    def _reap(self) -> None:
        for worker in [w for w in self.local.workers if not w.alive]:
            self.local.workers.remove(worker)
            self.ready.discard(worker.worker_id)
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
    with _exclusive(state_dir):
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


def _utc_now() -> datetime:
    return datetime.now(UTC)


def run_autoscaler(
    *,
    config: AutoscaleConfig,
    read_lag: Callable[[], LagReport],
    state_dir: Path,
    partitions: int,
    stop_event: threading.Event,
    interval_s: float = 10.0,
    dry_run: bool = False,
    emit: Callable[[Decision], None] = lambda decision: None,
    clock: Callable[[], datetime] = _utc_now,
    scale_timeout_s: float = 180.0,
) -> ScalerState:
    """Every ``interval_s``: read the lag, decide, and ask the supervisor for the decided count, until stopped.

    The current count is the supervisor's desired count (it replaces crashed workers itself). With
    ``dry_run`` nothing is changed: decisions are only emitted, against the supervisor's count if one runs,
    else against a simulated group that starts at 1 worker and follows the decisions. Returns the last state.
    """
    history: list[LagSample] = []
    state = ScalerState()
    simulated = 1
    window_s = config.dynamic.trend_window_s
    while not stop_event.is_set():
        started = time.monotonic()
        try:
            report = read_lag()
        except (KafkaException, LookupError, TimeoutError) as exc:
            log.warning("lag_unavailable", error=str(exc))
            stop_event.wait(interval_s)
            continue
        now = clock()
        sample = LagSample(now, report.total_lag, report.total_position)
        rate = processing_rate([*history, sample], window_s)
        status = read_status(state_dir) if supervisor_running(state_dir) else None
        if status is None and not dry_run:
            log.warning("no_supervisor", state_dir=str(state_dir), hint="start one with `tickcast supervise`")
            stop_event.wait(interval_s)
            continue
        current = status.desired if status is not None else simulated
        decision = decide(
            now=now,
            lag=report.total_lag,
            history=history,
            processing_rate=rate,
            current=current,
            partitions=partitions,
            config=config,
            state=state,
        )
        emit(decision)
        log.info("autoscale_decision", action=decision.action, desired=decision.desired, reason=decision.reason)
        if status is None:
            simulated, state = decision.desired, decision.state
        elif not dry_run:
            state = decision.state
            if decision.desired != current:
                _apply(state_dir, decision.desired, scale_timeout_s, stop_event)
                # Cooldowns run from when the new workers run, not from the request: starting them takes
                # a while, and the rebalance after it briefly stalls consumption.
                state = ScalerState(last_change=clock())
        # A dry run against a real supervisor changes nothing, so its cooldowns must not start either.
        history = recent_samples([*history, sample], window_s)
        stop_event.wait(max(0.0, interval_s - (time.monotonic() - started)))
    return state


def _apply(state_dir: Path, workers: int, timeout_s: float, stop_event: threading.Event) -> None:
    try:
        status = request_scale(state_dir, workers, timeout_s=timeout_s, cancel=stop_event)
        log.info("scaled", workers=workers, status=status.describe())
    except (TimeoutError, InterruptedError) as exc:
        # The request stands and the supervisor keeps working on it; the next decision sees its count.
        log.warning("scale_slow", workers=workers, error=str(exc))
    except SupervisorNotRunning as exc:
        log.error("scale_failed", workers=workers, error=str(exc))
