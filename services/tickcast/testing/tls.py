"""TLS in front of the embedded broker, for tests: a throwaway CA, and stunnel terminating TLS on a port.

Tansu cannot terminate TLS itself (its ``--cert``/``--key`` acceptor is never used), so a test starts the
broker advertising the proxy's address, and Debian's ``stunnel4`` in front of it: clients dial the proxy
over TLS, and every connection their metadata sends them to is the proxy again.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import trustme

from tickcast.common.processes import free_port, port_accepts, spawn, stop, wait_until

#: The names a test's broker certificate is valid for: clients dial 127.0.0.1 and check the name.
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class ThrowawayCA:
    """A CA's certificate (what clients trust) and a server certificate it signed (what the proxy presents)."""

    ca_file: Path
    server_pem: Path
    """The server's certificate chain and private key in one PEM file, as stunnel reads it."""
    server_cert: Path
    """The server's certificate chain alone, and below its key alone (as a Kubernetes TLS Secret has them)."""
    server_key: Path


def make_ca(directory: Path, names: tuple[str, ...] = LOOPBACK_NAMES) -> ThrowawayCA:
    """Create a CA in ``directory`` and a server certificate for ``names`` signed by it.

    >>> import tempfile, ssl
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     made = make_ca(Path(tmp))
    ...     ssl.create_default_context(cafile=str(made.ca_file)).cert_store_stats()["x509_ca"]
    1
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(*names)
    ca_file, server_pem = directory / "ca.pem", directory / "server.pem"
    server_cert, server_key = directory / "tls.crt", directory / "tls.key"
    ca.cert_pem.write_to_path(str(ca_file))
    server.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    server_cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(server_key))
    return ThrowawayCA(ca_file, server_pem, server_cert, server_key)


class StunnelMissing(Exception):
    """Debian's stunnel4 is not installed (``apt-get install stunnel4``)."""


def stunnel_binary() -> str:
    """Path of the stunnel executable; :class:`StunnelMissing` says how to install it."""
    found = shutil.which("stunnel4") or shutil.which("stunnel")
    if found is None:
        raise StunnelMissing("stunnel4 is not installed (apt-get install stunnel4): the TLS tests need it")
    return found


class TlsProxy:
    """stunnel accepting TLS on ``host:port`` and forwarding plaintext to ``target``; stopped by PID.

    Usage::

        with TlsProxy(ca.server_pem, target=broker.bootstrap_servers, port=port, log_file=path) as proxy:
            print(proxy.address)
    """

    def __init__(self, server_pem: Path, target: str, port: int = 0, host: str = "127.0.0.1",
                 log_file: Path | None = None) -> None:  # fmt: skip
        self.server_pem = server_pem
        self.target = target
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file or server_pem.with_name(f"stunnel-{self.port}.log")
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> TlsProxy:
        config = self.log_file.with_suffix(".conf")
        # foreground: stunnel stays our child (stopped by PID), logs to stderr; no pid file to clean up.
        config.write_text(
            "foreground = yes\npid =\ndebug = notice\n"
            f"[kafka]\naccept = {self.address}\nconnect = {self.target}\ncert = {self.server_pem}\n",
            encoding="utf-8",
        )
        self._output = open(self.log_file, "ab")  # noqa: SIM115 - closed in stop()
        self.process = spawn([stunnel_binary(), str(config)], output=self._output)
        process = self.process
        try:
            wait_until(
                lambda: process.poll() is not None or port_accepts(self.host, self.port),
                timeout_s,
                f"stunnel to accept TLS on {self.address}",
            )
        except TimeoutError:
            self.stop()
            raise
        if process.poll() is not None:
            self.stop()
            raise RuntimeError(f"stunnel exited with code {process.returncode}: {self.log_file.read_text()[-2000:]}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, grace_s=5.0)
        if self._output is not None:
            self._output.close()
            self._output = None

    def __enter__(self) -> TlsProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
