"""``bench.gateway --cpu-requests``: processes in cgroup v1 cpu groups weighted as the kubelet weighs requests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import psutil
import pytest

from tickcast.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
CPU_ROOT = Path("/sys/fs/cgroup/cpu")


@pytest.fixture
def cgroups(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))  # bench is a folder of the repository, not an installed package
    import bench.cgroups

    return bench.cgroups


def test_requests_become_the_kubelets_shares(cgroups: ModuleType) -> None:
    parse_requests, shares_of = cgroups.parse_requests, cgroups.shares_of
    assert parse_requests("gateway=1,workers=500m") == {"gateway": 1000, "workers": 500}
    assert [shares_of(m) for m in (2000, 1000, 500, 100)] == [2048, 1024, 512, 102]
    with pytest.raises(ValueError, match="must be positive"):
        parse_requests("broker=0m")


@pytest.mark.skipif(not os.access(CPU_ROOT, os.W_OK), reason="needs root and a cgroup v1 cpu hierarchy")
def test_a_process_and_its_children_are_weighted_then_moved_back_and_the_group_removed(cgroups: ModuleType) -> None:
    child = "import time; time.sleep(30)"
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(30)"
    parent = subprocess.Popen([sys.executable, "-c", code])
    groups = cgroups.CpuGroups(tag=f"test{os.getpid()}")
    try:
        groups.check()
        _wait_for_child(parent.pid)
        groups.place("gateway", 1500, [parent.pid])
        group = CPU_ROOT / f"tickcast-bench-test{os.getpid()}-gateway"
        assert (group / "cpu.shares").read_text().strip() == "1536"
        pids = groups.placed["gateway"]["pids"]
        assert len(pids) == 2 and all(_cpu_cgroup(pid) == f"/{group.name}" for pid in pids)
        groups.close()
        assert all(_cpu_cgroup(pid) == "/" for pid in pids) and not group.exists()
    finally:
        groups.close()  # again, if the test failed before: harmless
        for process in psutil.Process(parent.pid).children():
            process.kill()
        parent.kill()
    parent.wait()


def _cpu_cgroup(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return path
    raise AssertionError(f"no cpu controller in /proc/{pid}/cgroup")


def _wait_for_child(pid: int) -> None:
    wait_for(lambda: bool(psutil.Process(pid).children()), 10, "the child process to start")
