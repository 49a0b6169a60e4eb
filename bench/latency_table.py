"""The latency scenario's table and notes: rows per rate and topology (medians over rounds), notes per run.

A *run* is one processor measured once (``bench.latency.measure``); a *round* is the plain loop and the
worker measured in one topology; the table shows, per topology, the median of each number over rounds.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench import latency_stages
from bench.core import Row, at_most, ratio
from tickcast.predictor.gc_pauses import GENERATIONS

TARGET_RATE = 500.0
TARGET_P99_MS = 25.0
TARGET_P99_OVER_PLAIN = 1.5
#: The end-to-end target holds over the first seconds on fresh topics: Tansu's memory storage slows down as
#: batches accumulate in a partition (README), whatever the processor does.
FIRST_SECONDS = 10.0
#: The processor's own share (its fetch returned → outcome handed to its producer), over the whole run.
TARGET_OWN_P99_MS = 2.0
#: Latency over time is summarised in windows of this many seconds.
WINDOW_S = 5.0
KINDS = ("plain", "worker")
#: The per-batch split of the own share (``tickcast.predictor.own_share``): what the slowest tick of a batch
#: waited in all, how much of it the handling thread ran, and how much it was runnable without a CPU.
SPLIT = ("wall", "cpu", "waiting_for_cpu")
#: The numbers of a run that the table shows as medians over rounds.
SUMMED = ("p50_ms", "p99_ms", "p999_ms", "p99_first_seconds_ms", "own_p99_ms", "processor_cores", "broker_cores")


def median(values: list[float | None]) -> float | None:
    """The median of the values measured (None if none was).

    >>> median([3.0, None, 1.0, 2.0]), median([None])
    (2.0, None)
    """
    found = [v for v in values if v is not None]
    return round(statistics.median(found), 3) if found else None


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind, the median of each number over ``rounds`` (each ``{kind: run, ...}``); collections over all.

    >>> run = {"p99_ms": 1.0, "p99_first_seconds_ms": 1.0, "own_batch_p99_ms": {"wall": 2.0},
    ...        "gc_pauses": {"gc_gen0": {"count": 1, "longest_ms": 1.0}}}
    >>> s = summary([{"plain": run, "worker": run}, {"plain": {**run, "p99_ms": 3.0}, "worker": run}])
    >>> s["plain"]["p99_ms"], s["plain"]["own_batch_p99_ms"]["wall"], s["plain"]["gc_pauses"]["gc_gen0"]
    (2.0, 2.0, {'count': 2, 'longest_ms': 1.0})
    >>> s["worker_p99_over_plain"], s["rounds"]
    (0.666, 2)
    """
    result: dict[str, Any] = {"rounds": len(rounds)}
    for kind in KINDS:
        runs = [r[kind] for r in rounds]
        entry: dict[str, Any] = {key: median([run.get(key) for run in runs]) for key in SUMMED}
        entry["own_batch_p99_ms"] = {
            name: median([run.get("own_batch_p99_ms", {}).get(name) for run in runs]) for name in SPLIT
        }
        entry["gc_pauses"] = {}
        for name in GENERATIONS:
            pauses = [run.get("gc_pauses", {}).get(name, {}) for run in runs]
            counts = [p["count"] for p in pauses if p.get("count") is not None]
            longest = [p["longest_ms"] for p in pauses if p.get("longest_ms") is not None]
            entry["gc_pauses"][name] = {
                "count": sum(counts) if counts else None,
                "longest_ms": max(longest) if longest else None,
            }
        result[kind] = entry
    result["worker_p99_over_plain"] = median([ratio(r["worker"]["p99_ms"], r["plain"]["p99_ms"]) for r in rounds])
    result["worker_first_p99_over_plain"] = median(
        [ratio(r["worker"]["p99_first_seconds_ms"], r["plain"]["p99_first_seconds_ms"]) for r in rounds]
    )
    return result


def rows_for(rate: float, topology: str, summed: dict[str, Any], tagged: bool) -> list[Row]:
    """The table's rows of one rate and topology (``tagged``: the topology in each metric's name)."""
    tag = f"{rate:g}/s" + (f" [{topology}]" if tagged else "")
    rounds = summed["rounds"]
    over = f", median of {rounds}" if rounds > 1 else ""
    rows: list[Row] = []
    for kind in KINDS:
        run = summed[kind]
        for q in ("p50", "p99", "p999"):
            rows.append(Row(f"{tag} {kind} {q.replace('p999', 'p99.9')}{over}", run[f"{q}_ms"], "ms"))
        first_metric = f"{tag} {kind} p99, first {FIRST_SECONDS:g} s{over}"
        own_metric = f"{tag} {kind} own share p99 (fetch returned → producer), whole run{over}"
        first, own = run["p99_first_seconds_ms"], run["own_p99_ms"]
        if kind == "worker" and rate == TARGET_RATE:
            rows.append(at_most(first_metric, first, "ms", TARGET_P99_MS))
            rows.append(at_most(own_metric, own, "ms", TARGET_OWN_P99_MS))
        else:
            rows.append(Row(first_metric, first, "ms"))
            rows.append(Row(own_metric, own, "ms"))
        split = run["own_batch_p99_ms"]
        if any(value is not None for value in split.values()):
            rows.append(Row(f"{tag} {kind} own share per batch p99: wall{over}", split["wall"], "ms"))
            rows.append(Row(f"{tag} {kind} own share per batch p99: its CPU{over}", split["cpu"], "ms"))
            rows.append(
                Row(f"{tag} {kind} own share per batch p99: waiting for a CPU{over}", split["waiting_for_cpu"], "ms")
            )
        pauses = run["gc_pauses"]
        if any(p["count"] is not None for p in pauses.values()):
            rows.append(Row(f"{tag} {kind} GC collections, all rounds", _total(pauses, "count"), "count"))
            rows.append(Row(f"{tag} {kind} longest GC pause, all rounds", _longest(pauses), "ms"))
    p99_ratio = summed["worker_p99_over_plain"]
    if rate == TARGET_RATE:
        rows.append(at_most(f"{tag} worker p99 / plain p99{over}", p99_ratio, "x", TARGET_P99_OVER_PLAIN))
    else:
        rows.append(Row(f"{tag} worker p99 / plain p99{over}", p99_ratio, "x"))
    rows.append(
        Row(
            f"{tag} worker p99 / plain p99, first {FIRST_SECONDS:g} s{over}", summed["worker_first_p99_over_plain"], "x"
        )
    )
    rows.append(Row(f"{tag} worker CPU{over}", summed["worker"]["processor_cores"], "cores"))
    rows.append(Row(f"{tag} broker CPU, worker run{over}", summed["worker"]["broker_cores"], "cores"))
    rows.append(Row(f"{tag} broker CPU, plain run{over}", summed["plain"]["broker_cores"], "cores"))
    return rows


def _total(pauses: dict[str, dict[str, float | int | None]], key: str) -> int:
    return int(sum(p[key] or 0 for p in pauses.values()))


def _longest(pauses: dict[str, dict[str, float | int | None]]) -> float | None:
    """The longest pause of any generation (ms, its bucket's bound); None without any collection."""
    longest = [float(p["longest_ms"]) for p in pauses.values() if p["longest_ms"] is not None]
    return max(longest) if longest else None


def round_note(rate: str, topology: str, index: int, runs: dict[str, Any]) -> str:
    """One line per round: what the table's medians are made of."""
    parts = [
        f"{kind} p99 first {FIRST_SECONDS:g} s {runs[kind]['p99_first_seconds_ms']} ms, whole run "
        f"{runs[kind]['p99_ms']} ms, own share p99 {runs[kind]['own_p99_ms']} ms, processor on CPUs "
        f"{runs[kind]['topology'].get('seen', {}).get('processor')}"
        for kind in KINDS
    ]
    return f"round {index + 1} at {rate}/s, {topology}: " + "; ".join(parts)


def run_notes(label: str, rate: str, r: dict[str, Any]) -> list[str]:
    """The notes of one run (``label`` names the processor, topology and round): windows, stages per second,
    own share over time, collections, falling behind."""
    notes = []
    who = f"{label} at {rate}/s"
    if r.get("windows"):
        notes.append(
            f"{who}, per {WINDOW_S:g} s window (from s: end-to-end p50/p99 ms, own-share p99 ms per tick; "
            "per batch p99 ms wall/CPU/waiting for a CPU): "
            + "; ".join(
                f"{w['from_s']:g}: {w['p50_ms']}/{w['p99_ms']}, {w['own_p99_ms']}; "
                + "/".join(str(w["own_batch_p99_ms"][name]) for name in SPLIT)
                for w in r["windows"]
            )
        )
    if r.get("stages_by_second"):
        notes.append(latency_stages.describe(label, rate, r["stages_by_second"], r["own_p99_by_second"]))
    if r.get("own_timeline"):
        notes.append(
            f"{who}, own share over time from the feed's start, warm-up and catch-up included (from-to s: "
            "ticks, p99 ms per tick; per batch p99 ms wall/CPU/waiting for a CPU): "
            + "; ".join(
                f"{w['from_s']:g}-{w['to_s']:g}: {w['ticks']}, {w['p99_ms']}; "
                + "/".join(str(w[f"batch_{name}_p99_ms"]) for name in SPLIT)
                for w in r["own_timeline"]
            )
        )
    if any(p["count"] is not None for p in r.get("gc_pauses", {}).values()):
        notes.append(
            f"{who}, garbage collections over the run (tickcast.predictor.gc_pauses; generation: count, "
            "longest pause ms as its bucket's bound): "
            + "; ".join(f"{name}: {p['count']}, {p['longest_ms']}" for name, p in r["gc_pauses"].items())
        )
    if r.get("fell_behind"):
        notes.append(
            f"{who} fell behind: p50 grew from {r['timeline'][0][1]} ms in the first second to "
            f"{r['timeline'][-1][1]} ms in the last, with the processor at {r['processor_cores']} cores and the broker "
            f"at {r['broker_cores']} cores"
        )
    return notes


GENERAL_NOTES = [
    "Tansu (memory storage) re-lists every stored batch of a partition when a fetch finds new data, so its CPU "
    "per message grows with the number of batches written since the topic was created: at a steady rate, "
    "latency of the plain loop and of the worker alike rises during the run (see each run's timeline). "
    "Measured separately, a single hop at 500/s went from 0.3 to 0.6 broker cores within 15 s on a fresh topic.",
    "Own share per batch: a batch is what one fetch brought (the worker's, all its partitions; the plain "
    "loop's, all it polled at once), measured from the fetch to its last outcome handed over. Waiting for a "
    "CPU is the time the handling thread was runnable while other processes held the cores (Linux schedstat): "
    "the machine's load, not the worker's work; wall minus CPU minus waiting is mostly waiting for the GIL or "
    "a lock.",
    "The bench's tap is a consumer too, and on Tansu every consumer's fetches cost broker CPU, the more the "
    "shorter its fetch wait: --tap-fetch-wait-ms trades latency resolution for broker load.",
    "Topologies (bench.topology): shared = every process may run on every core; split = the broker, the feed "
    "and the tap pinned to the other cores and the measured processor to the last core alone, as in production "
    "where the broker has its own machines. Rounds alternate which topology and processor go first.",
]
