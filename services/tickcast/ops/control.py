"""How clients steer a local supervisor: files in its state directory, and the lock that says it runs.

``tickcast supervise`` (:mod:`tickcast.ops.supervisor`) owns a state directory; ``tickcast scale N`` and the
autoscaler talk to it only through these files, so they can run in other processes (or after a restart of
either side):

* ``desired.json``: ``{"workers": N, "request_id": ..., "requested_at": ...}``, written by :func:`request_scale`;
* ``status.json``: written by the supervisor after every change and every poll interval:
  ``{"pid", "state", "updated_at", "desired", "request_id", "running", "ready", "restarts",
  "workers": [{"id", "pid", "web_port", "ready", "log"}]}`` (:class:`~tickcast.ops.status.SupervisorStatus`);
  ``ready`` means the worker's web server answered;
* ``supervisor.lock``: held (``flock``) while a supervisor runs (:func:`hold_state_dir`), so there is one per
  directory and a dead supervisor's leftover status is recognised as stale;
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
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tickcast.ops.status import SupervisorStatus

DESIRED_FILE = "desired.json"
STATUS_FILE = "status.json"
LOCK_FILE = "supervisor.lock"
LOG_DIR = "logs"


class SupervisorNotRunning(Exception):
    """No supervisor holds the state directory, so nobody would act on a request."""


class SupervisorAlreadyRunning(Exception):
    """Another supervisor already runs on this state directory."""


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


@contextlib.contextmanager
def hold_state_dir(state_dir: Path, wait_s: float = 2.0) -> Iterator[None]:
    """Hold the state directory's lock for as long as the block runs: only one supervisor per directory.

    Raises :class:`SupervisorAlreadyRunning` if another process keeps the lock for ``wait_s``.

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> with hold_state_dir(d):
    ...     supervisor_running(d)
    True
    >>> supervisor_running(d)
    False
    """
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
