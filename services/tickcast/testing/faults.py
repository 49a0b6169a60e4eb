"""Faults a chaos test injects on purpose: a frozen process, a killed one, a network link that goes away.

Every fault is undone on the way out, whatever happens in between: :func:`paused` always sends SIGCONT,
:class:`NetworkNamespace` always deletes what it created, and :meth:`NetworkNamespace.link_cut` always
brings the link back up. Linux only; the namespace needs root and ``ip`` (iproute2).

Addresses: a namespace gets a veth pair with a link-local /30 (``169.254.x.y``) that exists only on that
pair, so a test never sends a packet to any network it did not create.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tickcast.common.processes import free_port, spawn
from tickcast.ops.workers import WorkerProcess
from tickcast.testing.waiting import wait_for

#: ``ip`` from iproute2; the CI script installs it when missing.
IP = "ip"


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of ``pid`` (``R``, ``S``, ``T`` when stopped, ``Z``...), None once it is gone.

    >>> process_state(os.getpid()) in ("R", "S")
    True
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may contain spaces: the state follows the last ')'.
    return stat.rsplit(")", 1)[1].split()[0]


def resident_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (``VmRSS``), 0 once it is gone.

    >>> resident_bytes(os.getpid()) > 1_000_000
    True
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


#: States of a process stopped by a signal (``t``: by a tracer).
STOPPED = ("T", "t")


@contextmanager
def paused(pid: int, timeout_s: float = 5.0) -> Iterator[None]:
    """Freeze ``pid`` (SIGSTOP) for the ``with`` block, and resume it (SIGCONT) however the block ends.

    The block starts once the kernel reports the process stopped, so its duration is the pause. Inside,
    the process holds its sockets but answers nothing: no heartbeat, no fetch, no HTTP request.

    >>> child = subprocess.Popen(["sleep", "30"])
    >>> with paused(child.pid):
    ...     process_state(child.pid)
    'T'
    >>> process_state(child.pid) not in (*STOPPED, None)  # R or S; D for a moment while it pages its code in
    True
    >>> child.kill(); child.wait()
    -9
    """
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: process_state(pid) in (*STOPPED, None), timeout_s, f"process {pid} to stop after SIGSTOP")
        yield
    finally:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        # The kernel wakes it on its own time: what follows the block may count on it running again.
        wait_for(lambda: process_state(pid) not in STOPPED, timeout_s, f"process {pid} to resume after SIGCONT")


def kill_hard(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> int:
    """``kill -9``: no signal handler, no revocation callback, no last flush. Returns the exit code (-9)."""
    with suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    return process.wait(timeout=timeout_s)


def _ip(*args: str, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [IP, *(("netns", "exec", namespace, IP) if namespace else ()), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # nosec B603 # ip, by path
    if check and done.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done


def _free_link_local_slash30() -> tuple[str, str]:
    """Two addresses of a random 169.254.x.y/30 that no interface of this host uses yet."""
    in_use = _ip("-o", "-4", "addr", "show").stdout
    for _ in range(100):
        third, fourth = secrets.randbelow(253) + 1, secrets.randbelow(63) * 4
        prefix = f"169.254.{third}."
        if prefix not in in_use:
            return f"{prefix}{fourth + 1}", f"{prefix}{fourth + 2}"
    raise RuntimeError("no free 169.254.x.0/24 for a veth pair")


@dataclass
class NetworkNamespace:
    """A network namespace joined to this host by a veth pair: ``host_address`` here, ``address`` inside.

    A process started with :meth:`command` reaches services that listen on ``host_address`` (e.g. a broker
    bound there) across the veth link, and only those; :meth:`link_cut` takes the link down and back up.

    Usage::

        with NetworkNamespace() as net:
            broker = EmbeddedBroker(host=net.host_address)
            worker = subprocess.Popen(net.command(["python", "-m", "tickcast", "worker"]))
            with net.link_cut():
                ...  # the worker's connections stall, as on a real partition
    """

    name: str = field(default_factory=lambda: f"tickcast-{secrets.token_hex(4)}")
    host_address: str = ""
    address: str = ""
    _token: str = field(default_factory=lambda: secrets.token_hex(4))
    _created: bool = False

    @property
    def host_interface(self) -> str:
        return f"tc{self._token}h"  # interface names are at most 15 characters

    @property
    def inner_interface(self) -> str:
        return f"tc{self._token}n"

    def __enter__(self) -> NetworkNamespace:
        try:
            _ip("netns", "add", self.name)
            self._created = True
            _ip("link", "add", self.host_interface, "type", "veth", "peer", "name", self.inner_interface)
            _ip("link", "set", self.inner_interface, "netns", self.name)
            self.host_address, self.address = _free_link_local_slash30()
            _ip("addr", "add", f"{self.host_address}/30", "dev", self.host_interface)
            _ip("link", "set", self.host_interface, "up")
            _ip("addr", "add", f"{self.address}/30", "dev", self.inner_interface, namespace=self.name)
            _ip("link", "set", self.inner_interface, "up", namespace=self.name)
            _ip("link", "set", "lo", "up", namespace=self.name)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Delete the namespace and the veth pair (deleting either end deletes both); safe to call twice."""
        if self._created:
            _ip("netns", "delete", self.name, check=False)
            self._created = False
        _ip("link", "delete", self.host_interface, check=False)

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec`` execs it: the PID is the program's own)."""
        return [IP, "netns", "exec", self.name, *argv]

    def link_up(self) -> bool:
        """True while the host end of the link is administratively up."""
        shown = _ip("-o", "link", "show", self.host_interface, check=False).stdout
        return "state UP" in shown or ",UP" in shown.split(">")[0]

    def cut(self) -> None:
        """Take the link down: packets are dropped, connections stall without a reset, as on a real partition."""
        _ip("link", "set", self.host_interface, "down")

    def restore(self) -> None:
        _ip("link", "set", self.host_interface, "up")
        _ip("link", "set", self.inner_interface, "up", namespace=self.name)

    @contextmanager
    def link_cut(self) -> Iterator[None]:
        """The link is down for the ``with`` block and up again however the block ends."""
        self.cut()
        try:
            yield
        finally:
            self.restore()


def start_worker_in(namespace: NetworkNamespace, env: dict[str, str], log_dir: Path, worker_id: str) -> WorkerProcess:
    """A ``tickcast worker`` inside ``namespace``; its HTTP server answers on ``namespace.address``.

    ``env`` is a pipeline's environment whose bootstrap servers listen on ``namespace.host_address``.
    """
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{worker_id}.log"
    # The worker listens on loopback by default, which is the namespace's own: bind its outward address.
    child_env = {
        **env, "TICKCAST_WORKER_ID": worker_id, "TICKCAST_WEB_PORT": str(port), "TICKCAST_WEB_HOST": namespace.address,
    }  # fmt: skip
    with open(log_path, "ab") as output:
        process = spawn(namespace.command([sys.executable, "-m", "tickcast", "worker"]), env=child_env, output=output)
    return WorkerProcess(worker_id, port, process, log_path)
