"""A ``tickcast gateway`` child process for tests and the bench, and a small reader of its SSE stream."""

from __future__ import annotations

import json
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import httpx

from tickcast.common.processes import free_port, spawn, stop
from tickcast.testing.waiting import wait_for


@dataclass
class GatewayProcess:
    """One gateway on a free loopback port, started with ``env`` (e.g. ``Pipeline.env()``), logging to a file.

    With ``ca_file`` the gateway serves HTTPS (``env`` names its certificate and key): :attr:`url` is ``https``
    and :attr:`verify` trusts that CA.
    """

    env: dict[str, str]
    log_path: Path
    port: int = 0
    process: Popen[bytes] | None = None
    ca_file: Path | None = None

    @property
    def url(self) -> str:
        return f"{'http' if self.ca_file is None else 'https'}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx should trust for this gateway (``verify=``)."""
        return True if self.ca_file is None else ssl.create_default_context(cafile=str(self.ca_file))

    def start(self, ready_timeout_s: float = 30.0) -> GatewayProcess:
        """Start it and wait until ``/health`` says every partition was read to its end."""
        self.port = self.port or free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as output:
            self.process = spawn(
                [sys.executable, "-m", "tickcast", "gateway", "--port", str(self.port)], env=self.env, output=output
            )
        wait_for(
            self.healthy,
            ready_timeout_s,
            f"the gateway on port {self.port} to be ready",
            check=self._check_alive,
            diagnostics=self.log_tail,
        )
        return self

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1.0, verify=self.verify).status_code == 200
        except httpx.HTTPError:
            return False

    def clients(self) -> int:
        """SSE clients connected, by the gateway's own metric; -1 if it did not answer within 5 s (busy)."""
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=5.0, verify=self.verify).text
        except httpx.TimeoutException:
            return -1
        for line in text.splitlines():
            if line.startswith("tickcast_gateway_clients "):
                return int(float(line.split()[1]))
        raise AssertionError("the gateway's /metrics has no tickcast_gateway_clients")

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"gateway exited with code {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.log_path.name}\n{text[-chars:]}"

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, grace_s=10)


@dataclass(frozen=True, slots=True)
class Event:
    """One SSE event as sent."""

    id: str | None
    event: str
    data: str

    def json(self) -> dict[str, object]:
        loaded: dict[str, object] = json.loads(self.data)
        return loaded


def read_events(
    url: str,
    count: int,
    timeout_s: float,
    last_event_id: str | None = None,
    token: str | None = None,
    verify: ssl.SSLContext | bool = True,
) -> list[Event]:
    """The first ``count`` events of the stream at ``url`` (from ``last_event_id`` if given, with a bearer
    ``token`` if given, trusting ``verify`` for https); then it hangs up.

    Raises :class:`TimeoutError` saying how many came if fewer than ``count`` arrive within ``timeout_s``.
    """
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    events: list[Event] = []
    deadline = time.monotonic() + timeout_s
    fields: dict[str, str] = {}
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout_s), verify=verify) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if time.monotonic() > deadline:
                break
            if line == "":
                if "event" in fields:
                    events.append(Event(fields.get("id"), fields["event"], fields.get("data", "")))
                    if len(events) >= count:
                        return events
                fields = {}
            elif not line.startswith(":") and ": " in line:
                name, value = line.split(": ", 1)
                fields[name] = value
    raise TimeoutError(f"{len(events)} of {count} events from {url} within {timeout_s}s")
