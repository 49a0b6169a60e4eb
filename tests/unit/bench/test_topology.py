"""``bench --topology split``: the latency bench pins every thread of the broker, itself and the processor."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tickcast.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
#: A process with a second thread from the start, which starts a third when a line arrives on stdin.
THREADED = """
import sys, threading
def idle(): threading.Event().wait()
threading.Thread(target=idle, daemon=True).start()
print("ready", flush=True)
sys.stdin.readline()
threading.Thread(target=idle, daemon=True).start()
print("more", flush=True)
sys.stdin.readline()
"""

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs Linux and 2 CPUs"
)


@pytest.fixture
def topology(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))  # bench is a folder of the repository, not an installed package
    import bench.topology

    return bench.topology


@pytest.fixture
def threaded() -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen([sys.executable, "-c", THREADED], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        yield child
    finally:
        child.kill()
        child.wait(timeout=10)


def masks(pid: int) -> list[set[int]]:
    return [os.sched_getaffinity(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")]


def test_split_gives_the_processor_a_core_of_its_own(topology: ModuleType) -> None:
    split = topology.placement(topology.SPLIT, {0, 1})
    assert (split.rest, split.measured) == ({0}, {1})
    shared = topology.placement(topology.SHARED, {0, 1})
    assert shared.rest == shared.measured == {0, 1}


def test_every_thread_is_pinned_and_new_threads_inherit(topology: ModuleType, threaded: subprocess.Popen[str]) -> None:
    last = max(os.sched_getaffinity(0))
    assert topology.pin(threaded.pid, frozenset({last})) >= 2
    assert masks(threaded.pid) == [{last}] * len(masks(threaded.pid)), masks(threaded.pid)
    assert threaded.stdin is not None and threaded.stdout is not None
    threaded.stdin.write("\n")
    threaded.stdin.flush()
    assert threaded.stdout.readline().strip() == "more"
    wait_for(lambda: len(masks(threaded.pid)) >= 3, 10, "the third thread")
    assert all(mask == {last} for mask in masks(threaded.pid)), masks(threaded.pid)
    assert topology.cpus_of(threaded.pid) == [last]


def test_pinned_moves_broker_and_bench_and_puts_them_back(
    topology: ModuleType, threaded: subprocess.Popen[str]
) -> None:
    everywhere = os.sched_getaffinity(0)
    split = topology.placement(topology.SPLIT)
    with topology.pinned(split, threaded.pid) as pinning:
        assert all(mask == split.rest for mask in masks(threaded.pid)), masks(threaded.pid)
        assert all(mask == split.rest for mask in masks(os.getpid())), masks(os.getpid())
        seen = pinning.seen()
        assert seen["broker"] == seen["bench"] == sorted(split.rest)
    assert all(mask == everywhere for mask in masks(threaded.pid)), masks(threaded.pid)
    assert all(mask == everywhere for mask in masks(os.getpid())), masks(os.getpid())
