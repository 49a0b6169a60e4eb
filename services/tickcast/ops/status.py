"""What a supervisor reports about itself and its workers: the contents of ``status.json``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
