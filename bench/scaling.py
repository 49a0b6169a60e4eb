"""Scenario 8, vertical scaling: the same backlog drained by 1, 2, 3 and 4 worker processes on this machine.

Each count drains its own copy of the backlog (fresh topics and group, as every drain). Per count the table
gives the drain rate, the speed-up over one worker, and the three things that stop it: the key skew (a
worker's share of the ticks bounds how fast the group can finish), the cores (what the workers, the broker
and the bench's tap used, against the machine's, and the machine's load average), and the broker's own CPU,
which grows with the fetches of every consumer. A backlog smaller than a few seconds of draining is mostly
drained by the first worker to join: keep the default size (200k ticks).
"""

from __future__ import annotations

from typing import Any

from bench.core import Context, Row, ScenarioResult, ratio
from bench.sampling import available_cpus, load_average
from bench.throughput import best_of


def limit_of(run: dict[str, Any], cpus: int, speedup: float | None, processes: int, load: float = 0.0) -> str:
    """What most plausibly stopped a drain from scaling further: cores, key skew, or nothing yet.

    ``load`` is the machine's 1-minute load average after the drain: other work on the machine takes cores too.

    >>> limit_of({"processes_cores": 1.2, "broker_cores": 0.5, "bench_cores": 0.2, "largest_share": 0.5}, 2, 1.2, 2)
    'cores (1.9 of 2 busy)'
    >>> run = {"processes_cores": 1.3, "broker_cores": 0.2, "bench_cores": 0.05, "largest_share": 0.5}
    >>> limit_of({**run, "other_cores": 0.35}, 2, 1.3, 2)
    'cores (1.9 of 2 busy, 0.35 by other processes)'
    >>> limit_of({"processes_cores": 0.7, "broker_cores": 0.1, "bench_cores": 0, "largest_share": 0.5}, 2, 0.9, 2, 9.0)
    'cores (machine load 9.0 on 2 CPUs)'
    >>> limit_of({"processes_cores": 1.0, "broker_cores": 0.2, "bench_cores": 0.1, "largest_share": 0.6}, 8, 1.6, 2)
    'key skew (bound 1.7x)'
    >>> limit_of({"processes_cores": 1.0, "broker_cores": 0.2, "bench_cores": 0.1, "largest_share": 0.3}, 8, 2.0, 2)
    'none'
    """
    others = run.get("other_cores") or 0.0
    busy = sum(run.get(name) or 0.0 for name in ("processes_cores", "broker_cores", "bench_cores")) + others
    skew_bound = 1 / run["largest_share"]
    if busy >= 0.9 * cpus:
        taken = f", {others:.2f} by other processes" if others >= 0.1 else ""
        return f"cores ({busy:.1f} of {cpus} busy{taken})"
    if load >= cpus:
        return f"cores (machine load {load:.1f} on {cpus} CPUs)"
    if speedup is not None and speedup >= 0.9 * skew_bound and skew_bound < processes:
        return f"key skew (bound {skew_bound:.1f}x)"
    return "none"


def run(context: Context) -> ScenarioResult:
    options = context.options
    cpus = available_cpus()
    by_count: dict[int, dict[str, Any]] = {}
    rows: list[Row] = []
    one_rate: float | None = None
    for processes in options.scaling_workers:
        chosen, _ = best_of(context, "worker", processes)
        if processes == 1:
            one_rate = chosen["rate_per_s"]
        speedup = ratio(chosen["rate_per_s"], one_rate)
        summary = {
            "rate_per_s": chosen["rate_per_s"],
            "steady_rate_per_s": chosen["steady_rate_per_s"],
            "speedup": speedup,
            "processes_cores": chosen["processes_cores"],
            "broker_cores": chosen["broker_cores"],
            "bench_cores": chosen["bench_cores"],
            "other_cores": chosen["other_cores"],
            "largest_share": chosen["largest_process_share"],
            "skew_bound": round(1 / chosen["largest_process_share"], 3),
            "process_cpu_us_per_tick": chosen["process_cpu_us_per_tick"],
        }
        summary["load_after"] = load_average()[0]
        summary["limit"] = limit_of(summary, cpus, speedup, processes, summary["load_after"])
        by_count[processes] = summary
        rows += [
            Row(f"{processes} worker(s): drain rate", chosen["rate_per_s"], "ticks/s"),
            Row(f"{processes} worker(s): speed-up over 1", speedup, "x"),
            Row(f"{processes} worker(s): drain rate while all answered", chosen["steady_rate_per_s"], "ticks/s"),
            Row(f"{processes} worker(s): workers' CPU", chosen["processes_cores"], "cores"),
            Row(f"{processes} worker(s): broker CPU", chosen["broker_cores"], "cores"),
            Row(f"{processes} worker(s): other processes' CPU", chosen["other_cores"], "cores"),
            Row(f"{processes} worker(s): bound from key skew", summary["skew_bound"], "x"),
            Row(f"{processes} worker(s): machine load average after", summary["load_after"], ""),
        ]
    return ScenarioResult(
        name="scaling",
        title="Vertical scaling: drain rate with 1..N worker processes on this machine",
        inputs={**options.drain_inputs(), "workers": list(options.scaling_workers), "cpus": cpus},
        metrics={"by_workers": by_count},
        rows=rows,
        notes=["limit per count: " + ", ".join(f"{n}w {found['limit']}" for n, found in by_count.items())],
    )
