"""Loads and meters of ``bench.gateway``: wrk for GETs, SSE and Kafka clients in processes of their own, CPU time.

The machine is shared, so every number is given with the load average at the time and with the CPU seconds
the process under test spent: wall latency on a loaded box says as much about the neighbours as about us.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_TOTAL = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)
#: wrk counts answers that are not 2xx/3xx apart (a 401 or 404 is fast, and would pass for a served GET).
_NOT_OK = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages, rounded (2 cores on the bench machine)."""
    return [round(value, 2) for value in os.getloadavg()]


@dataclass
class CpuMeter:
    """CPU seconds (user + system) of one process and its children, between :meth:`start` and :meth:`stop`."""

    pid: int
    _started: float = 0.0

    def seconds(self) -> float:
        root = psutil.Process(self.pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def start(self) -> CpuMeter:
        self._started = self.seconds()
        return self

    def stop(self) -> float:
        return round(self.seconds() - self._started, 3)


def thread_schedstats(pid: int, proc: Path = Path("/proc")) -> dict[str, tuple[int, int, int]]:
    """Each thread of ``pid`` (``name/tid``, the main thread ``main``): nanoseconds on a CPU, nanoseconds runnable
    but waiting for one (the scheduler's run queue), and timeslices, from ``/proc/PID/task/TID/schedstat``.
    Empty where the kernel keeps no such counts."""
    found: dict[str, tuple[int, int, int]] = {}
    for task in sorted((proc / str(pid) / "task").glob("*")):
        try:
            cpu_ns, wait_ns, slices = (int(field) for field in (task / "schedstat").read_text().split()[:3])
            name = "main" if task.name == str(pid) else f"{(task / 'comm').read_text().strip()}/{task.name}"
        except (OSError, ValueError):
            continue  # the thread ended meanwhile, or no schedstat
        found[name] = (cpu_ns, wait_ns, slices)
    return found


def sched_delta(
    before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]
) -> dict[str, dict[str, float]]:
    """Per thread present at both ends, what it did between them: CPU seconds, seconds waiting for a CPU,
    timeslices, and the mean wait per timeslice (ms): how long a wake-up waited for a core, on average.

    >>> sched_delta({"main": (0, 0, 10)}, {"main": (2_000_000_000, 30_000_000, 110), "x/7": (1, 1, 1)})
    {'main': {'cpu_s': 2.0, 'runqueue_wait_s': 0.03, 'slices': 100, 'wait_ms_per_slice': 0.3}}
    """
    found: dict[str, dict[str, float]] = {}
    for name, (cpu_ns, wait_ns, slices) in after.items():
        if name not in before:
            continue
        cpu0, wait0, slices0 = before[name]
        count = slices - slices0
        found[name] = {
            "cpu_s": round((cpu_ns - cpu0) / 1e9, 3),
            "runqueue_wait_s": round((wait_ns - wait0) / 1e9, 3),
            "slices": count,
            "wait_ms_per_slice": round((wait_ns - wait0) / 1e6 / count, 3) if count else 0.0,
        }
    return found


def wrk_get(url: str, rate: int, seconds: float, headers: tuple[str, ...] = ()) -> dict[str, Any]:
    """GET ``url`` at about ``rate``/s with wrk (sending ``headers``, ``Name: value`` each); its latency
    percentiles (ms), rate and request count."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"skipped": "wrk is not installed (Debian package wrk)"}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("function delay() return 10 end\n")  # ms between one connection's requests
    # Each connection makes one request per 10 ms plus its latency and wrk's timer: measured ~11.8 ms a cycle
    # (22 connections made 1,867/s when 2,000 were asked), so plan 12 ms, else the rate falls short.
    connections = max(1, math.ceil(rate * 12 / 1000))
    with tempfile.TemporaryFile("w+") as report:
        process = subprocess.Popen(  # nosec B603 # argv built here: wrk with fixed options
            [wrk, "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", script.name]
            + [arg for header in headers for arg in ("-H", header)]
            + [url],
            stdout=report,
            stderr=subprocess.DEVNULL,
        )
        # wait4 gives this child's own CPU time: the load generator's share of the 2 cores, which it takes
        # from the gateway and the pipeline (a real client would be on another machine).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        os.unlink(script.name)
        if process.returncode != 0:
            raise RuntimeError(f"wrk exited with {process.returncode}")
        report.seek(0)
        text = report.read()
    return {"connections": connections, "wrk_cpu_s": round(usage.ru_utime + usage.ru_stime, 3), **parse_wrk(text)}


def parse_wrk(text: str) -> dict[str, float | None]:
    """The rate, request count and latency percentiles (ms) of wrk's ``--latency`` report.

    >>> parse_wrk("     50%  812.00us\\n     99%    1.25ms\\n  39974 requests in 20.0s\\nRequests/sec:   1998.70\\n")
    {'requests_per_s': 1998.7, 'requests': 39974.0, 'not_ok': 0, 'p50_ms': 0.812, 'p99_ms': 1.25}
    >>> parse_wrk("  10 requests in 1.0s\\n  Non-2xx or 3xx responses: 10\\n")["not_ok"]
    10
    """
    achieved = _RATE.search(text)
    total = _TOTAL.search(text)
    percentiles = {f"p{q}_ms": round(float(v) * _UNIT_MS[unit], 3) for q, v, unit in _PERCENTILE.findall(text)}
    return {
        "requests_per_s": float(achieved[1]) if achieved else None,
        "requests": float(total[1]) if total else None,
        "not_ok": int(not_ok[1]) if (not_ok := _NOT_OK.search(text)) else 0,
        **percentiles,
    }


def start_load(module: str, *args: str, env: dict[str, str] | None = None, nice: bool = False) -> subprocess.Popen[str]:
    """``python -m module args...`` in a process of its own (so the load does not share the measured process).

    ``nice``: at the lowest CPU priority, when the load must not take CPU from the process being measured
    (the broker, on a shared 2-core machine), only use what is left.
    """
    prefix = ["nice", "-n", "19"] if nice and shutil.which("nice") else []
    return subprocess.Popen(  # nosec B603 # argv built here: this interpreter running one of tickcast.testing's loads
        [*prefix, sys.executable, "-m", module, *args], stdout=subprocess.PIPE, text=True, env=env
    )


def load_result(process: subprocess.Popen[str], timeout_s: float) -> dict[str, Any]:
    """The one JSON line a load process prints last."""
    out, _ = process.communicate(timeout=timeout_s)
    if process.returncode != 0:
        raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


#: One bucket line of a Prometheus histogram: its name, other labels, upper bound and cumulative count.
_BUCKET = re.compile(r'^(\w+)_bucket\{(.*?)le="([^"]+)"\} ([\d.e+]+)$', re.MULTILINE)


def histogram_buckets(metrics_text: str, metric: str, labels: str = "") -> list[tuple[float, float]]:
    """Histogram ``metric``'s buckets (upper bound in s, cumulative count) from ``/metrics`` text, of the series
    whose other labels are ``labels`` as written (e.g. ``generation="2",``).

    >>> histogram_buckets('x_bucket{generation="2",le="+Inf"} 3.0', "x", 'generation="2",')
    [(inf, 3.0)]
    """
    return [
        (float(bound), float(count))
        for name, other, bound, count in _BUCKET.findall(metrics_text)
        if name == metric and other == labels
    ]


def bucket_quantile(before: list[tuple[float, float]], after: list[tuple[float, float]], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding the ``q`` quantile of what was observed between two scrapes.

    >>> before = [(0.01, 0.0), (0.1, 0.0), (math.inf, 0.0)]
    >>> bucket_quantile(before, [(0.01, 90.0), (0.1, 100.0), (math.inf, 100.0)], 0.99)
    100.0
    """
    counts = dict(before)
    window = [(bound, count - counts.get(bound, 0.0)) for bound, count in after]
    total = window[-1][1] if window else 0.0
    if total <= 0:
        return None
    bound = next(bound for bound, count in window if count >= q * total)
    return bound * 1000.0 if math.isfinite(bound) else math.inf


def observed(before: list[tuple[float, float]], after: list[tuple[float, float]], above_s: float = 0.0) -> float:
    """How many observations between two scrapes were above ``above_s`` (a bucket bound).

    >>> observed([(0.005, 1.0), (math.inf, 2.0)], [(0.005, 4.0), (math.inf, 9.0)], above_s=0.005)
    4.0
    """
    total = (after[-1][1] - before[-1][1]) if after and before else (after[-1][1] if after else 0.0)
    under = dict(after).get(above_s, 0.0) - dict(before).get(above_s, 0.0) if above_s > 0 else 0.0
    return total - under


def sse_clients(url: str, clients: int, seconds: float, symbols: list[str], processes: int = 1) -> dict[str, Any]:
    load = start_load(
        "tickcast.testing.sse_load", url, str(clients), str(seconds), ",".join(symbols), f"--processes={processes}"
    )
    return load_result(load, seconds + 120)
