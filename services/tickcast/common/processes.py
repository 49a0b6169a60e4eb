"""Child processes that never outlive us: start, wait for readiness with a deadline, stop by PID."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux only: the kernel sends SIGTERM to the child if the parent dies, even by SIGKILL,
    # so a crashed demo or test run leaves no broker or worker behind.
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str], env: dict[str, str] | None = None, output: IO[bytes] | int | None = None
) -> subprocess.Popen[bytes]:
    """Start a child that is terminated if this process dies."""
    return subprocess.Popen(  # nosec B603 # argv lists: tickcast's own commands and the broker binary, no shell
        list(argv),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output if output is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if output is not None else subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
        # Own process group: a Ctrl-C in the terminal reaches only the parent, which then
        # stops its children in order (producer, drain, workers, broker) instead of all at once.
        process_group=0,
    )


def stop(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> int:
    """SIGTERM the child by PID, wait up to ``grace_s``, then SIGKILL. Returns its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace_s)
    return process.returncode


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the caller binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll ``condition`` until true; raise TimeoutError saying ``what`` did not happen.

    >>> wait_until(lambda: True, 1.0, "truth")
    >>> wait_until(lambda: False, 0.1, "the impossible")
    Traceback (most recent call last):
    ...
    TimeoutError: timed out after 0.1s waiting for the impossible
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)  # polling interval of a deadline loop


def port_accepts(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def current_env() -> dict[str, str]:
    """A copy of this process's environment, for children that must inherit it."""
    return dict(os.environ)
