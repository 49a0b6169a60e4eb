"""``tickcast.common.affinity``: pinning a process pins every thread of it, and of its children."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from tickcast.common import affinity
from tickcast.testing.waiting import wait_for

#: A process with a second thread and a child, both alive until its stdin closes.
BUSY = """
import subprocess, sys, threading
threading.Thread(target=sys.stdin.read, daemon=True).start()
child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
print("ready", flush=True)
sys.stdin.read()
child.stdin.close()
child.wait()
"""

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to pin to one of them")


@pytest.fixture
def topology() -> ModuleType:
    return affinity


@pytest.fixture
def process() -> Iterator[subprocess.Popen[str]]:
    started = subprocess.Popen([sys.executable, "-c", BUSY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if started.stdout is None or started.stdout.readline().strip() != "ready":
            raise RuntimeError("the process did not start")
        yield started
    finally:
        if started.stdin is not None:
            started.stdin.close()
        started.wait(timeout=10)


def test_every_thread_of_a_process_and_of_its_children_is_pinned(
    topology: ModuleType, process: subprocess.Popen[str]
) -> None:
    threads_of, pin, cpus_of = topology.threads_of, topology.pin, topology.cpus_of
    one = min(os.sched_getaffinity(0))
    wait_for(lambda: len(threads_of(process.pid)) >= 3, 10, "the process's thread and child")
    tids = threads_of(process.pid)

    assert pin(process.pid, {one}) == len(tids)
    assert {tid: sorted(os.sched_getaffinity(tid)) for tid in tids} == {tid: [one] for tid in tids}
    assert cpus_of(process.pid) == [one]


def test_a_process_gone_is_nothing_to_pin(topology: ModuleType) -> None:
    pin, cpus_of = topology.pin, topology.cpus_of
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=10)
    assert pin(gone.pid, {0}) == 0
    assert cpus_of(gone.pid) == []
