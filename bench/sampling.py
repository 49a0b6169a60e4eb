"""What the machine and its processes use: CPU seconds sampled in the background, resident memory, load.

Read through :mod:`psutil`, so the bench does not parse ``/proc`` itself.
"""

from __future__ import annotations

import itertools
import platform
import threading
import time
from collections.abc import Callable

import psutil


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded (stamped around every scenario: the machine is shared)."""
    return [round(x, 2) for x in psutil.getloadavg()]


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    return len(psutil.Process().cpu_affinity())


def speed_probe_ms(rounds: int = 3) -> float:
    """CPU time (ms, the best of ``rounds``) of a fixed pure-Python loop: how fast this machine runs Python now.

    Stamped at a run's start and end. This VM's speed moves up to 2x from one hour to the next (the minimal
    loop took 24-28 µs a tick one morning and 62-65 one evening), and every µs per tick moves with it; ratios
    within a run do not. CPU time, not wall time, so other processes waiting for the cores do not count.
    """
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        total = 0
        for number in range(1_000_000):
            total += number * number
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (a VM may hide the exact part)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rss_bytes(pid: int | None = None) -> int:
    """Resident memory of a process (this one by default)."""
    return int(psutil.Process(pid).memory_info().rss)


def machine_busy_seconds() -> float:
    """CPU seconds of the whole machine, all CPUs, that were not idle: every process's, the kernel's, and time
    the hypervisor gave to other guests (steal), which this machine could not use either.

    >>> machine_busy_seconds() > 0
    True
    """
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def cpu_seconds(process: psutil.Process) -> float | None:
    """User + system CPU seconds of a process (all its threads); None once it is gone."""
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return float(times.user + times.system)


class CpuSampler:
    """Samples the CPU seconds of labelled processes every ``interval_s`` in a background thread.

    Samples are (wall time, CPU seconds), so the CPU a process used in any window, such as first to last
    prediction, can be interpolated afterwards. The label :data:`MACHINE` is the whole machine
    (:func:`machine_busy_seconds`), so what other processes took in a window is what is left over.
    """

    MACHINE = "machine"

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.pids: dict[str, int] = {}
        self.samples: dict[str, list[tuple[float, float]]] = {self.MACHINE: []}
        self._readers: dict[str, Callable[[], float | None]] = {self.MACHINE: machine_busy_seconds}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def watch(self, label: str, pid: int) -> None:
        self.pids[label] = pid
        self.samples.setdefault(label, [])
        try:
            process = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return  # gone already: no samples, so it used no CPU in any window
        self._readers[label] = lambda: cpu_seconds(process)
        self._sample_one(label)

    def start(self) -> CpuSampler:
        self._sample_one(self.MACHINE)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for label in list(self._readers):
            self._sample_one(label)

    def _sample_one(self, label: str) -> None:
        value = self._readers[label]()
        if value is not None:
            self.samples[label].append((time.time(), value))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):  # sampling period
            for label in list(self._readers):
                self._sample_one(label)

    def cpu_between(self, label: str, t0: float, t1: float) -> float:
        """CPU seconds ``label`` used between wall times t0 and t1 (linear between samples)."""
        series = self.samples.get(label, [])
        if len(series) < 2:
            return 0.0
        return max(0.0, _interpolate(series, t1) - _interpolate(series, t0))

    def utilisation(self, label: str, t0: float, t1: float) -> float:
        """Cores used on average in [t0, t1] (1.0 = one core fully busy)."""
        return self.cpu_between(label, t0, t1) / (t1 - t0) if t1 > t0 else 0.0


def _interpolate(series: list[tuple[float, float]], t: float) -> float:
    """The value of a (time, value) series at ``t``, linear between samples and flat beyond them.

    >>> _interpolate([(0.0, 0.0), (2.0, 1.0)], 1.0), _interpolate([(0.0, 0.0), (2.0, 1.0)], 5.0)
    (0.5, 1.0)
    """
    if t <= series[0][0]:
        return series[0][1]
    for (ta, ca), (tb, cb) in itertools.pairwise(series):
        if ta <= t <= tb:
            return ca + (cb - ca) * ((t - ta) / (tb - ta) if tb > ta else 0.0)
    return series[-1][1]
