"""Fault injection undoes itself: a paused child always resumes, a namespace and its link always go away."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tickcast.testing.faults import NetworkNamespace, kill_hard, paused, process_state


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(["sleep", "60"])
    yield child
    if child.poll() is None:
        child.kill()
        child.wait()


def test_a_paused_child_is_stopped_inside_and_running_after(sleeper: subprocess.Popen[bytes]) -> None:
    with paused(sleeper.pid):
        assert process_state(sleeper.pid) == "T"
    # Not in ("R", "S"): a process just started and woken shows "D" now and then while it pages its code in
    # (6 of 1,500 tries, 2026-12-03; one of them failed the unit suite under load).
    assert process_state(sleeper.pid) not in ("T", "t", None)


def test_a_paused_child_resumes_even_when_the_block_fails(sleeper: subprocess.Popen[bytes]) -> None:
    with pytest.raises(RuntimeError, match="the test failed"), paused(sleeper.pid):
        raise RuntimeError("the test failed while the child was frozen")
    assert process_state(sleeper.pid) not in ("T", "t", None), "left frozen after an exception"


def test_a_child_that_dies_while_paused_does_not_break_the_resume(sleeper: subprocess.Popen[bytes]) -> None:
    with paused(sleeper.pid):
        assert kill_hard(sleeper) == -9
    assert process_state(sleeper.pid) is None


def test_kill_hard_skips_the_signal_handlers() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    assert kill_hard(child) == -9


needs_root_and_ip = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="network namespaces need root and iproute2's ip"
)


def connects_from_inside(net: NetworkNamespace, port: int, timeout_s: float) -> bool:
    probe = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection(({net.host_address!r}, {port}), timeout={timeout_s}).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    done = subprocess.run(net.command([sys.executable, "-c", probe]), timeout=30, check=False)
    return done.returncode == 0


@needs_root_and_ip
def test_a_namespace_reaches_the_host_over_its_link_until_cut_and_is_gone_after() -> None:
    listener = socket.socket()
    with listener:
        with NetworkNamespace() as net:
            listener.bind((net.host_address, 0))
            listener.listen()
            port = listener.getsockname()[1]
            assert net.host_address.startswith("169.254.") and net.address.startswith("169.254.")
            assert connects_from_inside(net, port, timeout_s=5)
            with net.link_cut():
                assert not net.link_up()
                assert not connects_from_inside(net, port, timeout_s=1)
            assert net.link_up()
            assert connects_from_inside(net, port, timeout_s=5)
            name, interface = net.name, net.host_interface
        assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        shown = subprocess.run(["ip", "link", "show", interface], capture_output=True, text=True)
        assert shown.returncode != 0, f"veth {interface} left behind"


@needs_root_and_ip
def test_the_link_comes_back_when_the_block_fails() -> None:
    with NetworkNamespace() as net:
        with pytest.raises(RuntimeError), net.link_cut():
            raise RuntimeError("failed while cut")
        assert net.link_up()
