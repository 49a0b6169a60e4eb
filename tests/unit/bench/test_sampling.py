"""``bench.sampling``: the whole machine's CPU is sampled too, so a drain can say what other processes took."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[3]

#: CPU seconds the unwatched child burns: well above the sampler's 0.25 s resolution.
BURN_S = 0.6

BURN = f"import time\nend = time.process_time() + {BURN_S}\nwhile time.process_time() < end:\n    pass\n"


@pytest.fixture
def sampling(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))  # bench is a folder of the repository, not an installed package
    import bench.sampling

    return bench.sampling


def test_the_machine_series_counts_a_process_nobody_watches(sampling: ModuleType) -> None:
    sampler = sampling.CpuSampler(interval_s=0.05).start()
    t0 = time.time()
    child = subprocess.Popen([sys.executable, "-c", BURN])
    # Blocking until it exits (this process idle meanwhile), with the child's own CPU from the kernel.
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    burnt = usage.ru_utime + usage.ru_stime
    assert child.returncode == 0
    t1 = time.time()
    sampler.stop()
    machine = sampler.cpu_between(sampler.MACHINE, t0, t1)
    assert burnt >= BURN_S * 0.9, f"the child used {burnt:.2f} s of CPU, not {BURN_S}"
    # Every CPU second on the machine counts, the unwatched child's among them.
    assert machine >= burnt * 0.9, f"the machine series saw {machine:.2f} s while a child alone burnt {burnt:.2f} s"
    assert machine <= (t1 - t0) * psutil.cpu_count() * 1.05, "more CPU seconds than the machine's cores had"


def test_a_watched_process_and_the_machine_are_separate_series(sampling: ModuleType) -> None:
    sampler = sampling.CpuSampler(interval_s=0.05)
    sampler.watch("self", psutil.Process().pid)
    sampler.start()
    end = time.process_time() + 0.3
    while time.process_time() < end:  # burn on this thread, so both series grow
        pass
    sampler.stop()
    assert set(sampler.samples) == {sampler.MACHINE, "self"}
    assert all(len(series) >= 2 for series in sampler.samples.values()), sampler.samples


def test_the_speed_probe_keeps_its_fastest_round(sampling: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    # CPU clock readings around three rounds: 0.09 s, 0.06 s, 0.12 s.
    readings = iter([1.0, 1.09, 2.0, 2.06, 3.0, 3.12])
    monkeypatch.setattr(sampling.time, "process_time", lambda: next(readings))
    assert sampling.speed_probe_ms(rounds=3) == 60.0


def test_the_speed_probe_times_real_work(sampling: ModuleType) -> None:
    assert 1.0 < sampling.speed_probe_ms(rounds=1) < 5_000.0
    assert sampling.cpu_model()
