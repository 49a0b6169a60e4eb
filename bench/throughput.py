"""Scenario 1, throughput: drain a pre-produced backlog with the minimal loop (the floor of the job), the plain
loop (the handler without Faust: the ceiling of a worker) and one worker.

Drain rate = ticks answered / (last ``predicted_at`` - first ``predicted_at``): the processes stamp
their own predictions, so neither start-up nor the bench's reading speed is in the number. The tap
only keeps the predictions' bytes while the drain runs and decodes them afterwards, so it takes
little CPU from the processes being measured.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from bench.core import UNMEASURED, BenchError, Context, Row, ScenarioResult, at_least, at_most, ratio
from bench.feeds import publish_backlog
from bench.processors import Processor, make_processor
from bench.pyspy import PySpy, summarise
from bench.sampling import CpuSampler
from bench.taps import RecordingTap

TARGET_WORKER_OVER_PLAIN = 0.9
TARGET_WORKER_CPU_US = 50.0


def drain(
    context: Context,
    kind: str,
    processes: int = 1,
    ticks: int | None = None,
    model: str | None = None,
    profile: bool = False,
    snapshots: bool = False,
) -> dict[str, Any]:
    """One drain run on fresh topics and a fresh group; returns rate, timings and CPU of broker and processes."""
    options = context.options
    ticks = ticks or options.ticks
    model = model or options.model
    label = (
        f"{kind}x{processes}"
        + (f"-{model}" if model != options.model else "")
        + ("-snapshots" if snapshots else "")
        + ("" if options.next_tick else "-defaults")
        + ("-profiled" if profile else "")
    )
    pipeline = context.pipeline(label, model, snapshots)
    # A profiled worker gets its backlog only once py-spy is attached: it drains a waiting backlog in seconds,
    # faster than its group settles, so a profile attached after that sampled an idle worker.
    backlog = None if profile else publish_backlog(pipeline, ticks, options.symbols)
    processor: Processor = make_processor(kind, pipeline)
    sampler = CpuSampler()
    sampler.watch("broker", context.broker_pid)
    sampler.watch("bench", os.getpid())  # the tap and the polling: CPU the processes being measured cannot use
    spy: PySpy | None = None
    profile_from = 0
    tap = RecordingTap(pipeline)
    try:
        tap.start()
        sampler.start()
        started = time.time()
        processor.start(processes)
        for name, pid in processor.pids().items():
            sampler.watch(name, pid)
        if profile:
            # Attach once the group has settled, so the profile is the drain and not imports and joins.
            processor.wait_ready(processes)
            profile_from = processor.handled() or 0
            spy = PySpy(pipeline.log_dir / "py-spy.txt", options.profile_rate)
            spy.attach(next(iter(processor.pids().values())))
            backlog = publish_backlog(pipeline, ticks, options.symbols)
        seen = tap.wait_answered(ticks, 120 + ticks / 100, f"predictions of {label}", processor.check_alive)
        if spy is not None:
            spy.stop()
        handled_at_end = processor.handled() or ticks
        sampler.stop()
    except UNMEASURED as exc:
        raise BenchError(f"{exc}\n{processor.logs()}") from exc
    finally:
        if spy is not None:
            spy.stop()
        tap.stop()
        sampler.stop()
        processor.stop()

    if backlog is None:  # published before the drain, or once py-spy attached: only a bug gets here
        raise BenchError(f"{label}: no backlog was published")
    first_by_tick: dict[tuple[int, int], Any] = {}
    for s in seen:
        first_by_tick.setdefault((s.partition, s.offset), s)
    answered = list(first_by_tick.values())
    stamps = [s.predicted_us / 1e6 for s in answered]
    t_first, t_last = min(stamps), max(stamps)
    span = t_last - t_first
    rate = len(answered) / span if span > 0 else None
    per_process: dict[str, dict[str, Any]] = {}
    for name in sorted({s.worker for s in answered}):
        mine = [s.predicted_us / 1e6 for s in answered if s.worker == name]
        per_process[name] = {"ticks": len(mine), "first": min(mine), "last": max(mine)}
    # With several processes, the window in which all of them were answering is the steady state:
    # it leaves out a join that finished after the first one started, and the tail of a bigger share.
    overlap_from = max(p["first"] for p in per_process.values())
    overlap_to = min(p["last"] for p in per_process.values())
    in_overlap = sum(1 for t in stamps if overlap_from <= t <= overlap_to)
    overlap_rate = in_overlap / (overlap_to - overlap_from) if overlap_to - overlap_from > 1.0 else None
    processor_cpu = sum(sampler.cpu_between(name, t_first, t_last) for name in per_process)
    broker_cpu = sampler.cpu_between("broker", t_first, t_last)
    bench_cpu = sampler.cpu_between("bench", t_first, t_last)
    # What the rest of the machine took meanwhile (other jobs, the kernel, a hypervisor's steal): cores the drain
    # could not have. Sampled at other instants than the processes, so floored at zero.
    other_cpu = max(0.0, sampler.cpu_between(sampler.MACHINE, t_first, t_last) - processor_cpu - broker_cpu - bench_cpu)
    bins = _timeline(stamps, t_first)
    result: dict[str, Any] = {
        "label": label,
        "kind": kind,
        "processes": processes,
        "model": model,
        "backlog_ticks": backlog.ticks,
        "backlog_produce_s": round(backlog.seconds, 2),
        "ticks_per_partition": backlog.per_partition,
        "answered": len(answered),
        "duplicates": len(seen) - len(answered),
        "drain_s": round(span, 3),
        "rate_per_s": round(rate, 1) if rate else None,
        "steady_rate_per_s": round(overlap_rate, 1) if overlap_rate else None,
        "first_prediction_after_start_s": round(t_first - started, 2),
        "per_process_ticks": {name: p["ticks"] for name, p in per_process.items()},
        "largest_process_share": round(max(p["ticks"] for p in per_process.values()) / len(answered), 3),
        "broker_cpu_s": round(broker_cpu, 4),
        "broker_cores": round(broker_cpu / span, 3) if span > 0 else None,
        "broker_cpu_ms_per_1k_ticks": round(broker_cpu / len(answered) * 1e6, 1),
        "bench_cores": round(bench_cpu / span, 3) if span > 0 else None,
        "other_cores": round(other_cpu / span, 3) if span > 0 else None,
        # Four places: a quick drain (1,000 ticks) takes ~35 ms on a fast host, and its CPU, interpolated
        # between 0.25 s samples, is a few ms: two places rounded it to 0.0.
        "processes_cpu_s": round(processor_cpu, 4),
        "processes_cores": round(processor_cpu / span, 3) if span > 0 else None,
        "process_cpu_us_per_tick": round(processor_cpu / len(answered) * 1e6, 1),
        "rate_timeline": bins,
    }
    if spy is not None:
        result["profile"] = summarise(
            spy.output, max(1, handled_at_end - profile_from), options.profile_rate, result["process_cpu_us_per_tick"]
        )
    return result


def _timeline(stamps: list[float], t0: float, width_s: float = 0.5) -> list[list[float]]:
    """[seconds since the first prediction, predictions per second] in ``width_s`` bins."""
    counts = Counter(int((t - t0) / width_s) for t in stamps)
    return [[round(b * width_s, 2), round(counts.get(b, 0) / width_s, 1)] for b in range(max(counts) + 1)]


def best_of(
    context: Context, kind: str, processes: int = 1, snapshots: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``--repeat`` runs; the median-rate run stands for all (the machine is shared, so noise is one-sided)."""
    runs = [drain(context, kind, processes, snapshots=snapshots) for _ in range(context.options.repeat)]
    return median_run(runs), runs


def interleaved(
    context: Context,
    configurations: dict[str, dict[str, Any]],
    may_fail: Collection[str] = (),
    rounds: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """``rounds`` (``--repeat`` if not given) rounds of one drain per configuration (keyword arguments of
    :func:`drain`), the order reversed every other round: a machine that gets busier or quieter during the runs
    then weighs on every configuration alike, where runs of one configuration after another would put the whole
    drift between two of them.

    A run of a configuration in ``may_fail`` that could not be measured is kept as ``{"failed": reason}`` and the
    configuration sits out the later rounds (a peer that timed out once costs minutes each time); so the i-th run
    of every configuration is round i's. Any other configuration's failure ends the scenario.
    """
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configurations}
    names = list(configurations)
    for round_number in range(context.options.repeat if rounds is None else rounds):
        for name in names if round_number % 2 == 0 else names[::-1]:
            if runs[name] and "failed" in runs[name][-1]:
                continue
            try:
                runs[name].append(drain(context, **configurations[name]))
            except UNMEASURED as exc:
                if name not in may_fail:
                    raise
                runs[name].append({"failed": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
    return runs


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median rate (the lower of the middle two): it stands for all of them."""
    rates = [r["rate_per_s"] or 0.0 for r in runs]
    return runs[rates.index(statistics.median_low(rates))]


def round_ratios(numerators: list[dict[str, Any]], denominators: list[dict[str, Any]]) -> list[float]:
    """Round by round, the drain rate of one configuration over another's, each pair drained next to each other
    under the same load; a round with a rate missing is left out.

    >>> round_ratios([{"rate_per_s": 30.0}, {"rate_per_s": None}], [{"rate_per_s": 20.0}, {"rate_per_s": 10.0}])
    [1.5]
    """
    by_round = [ratio(n["rate_per_s"], d["rate_per_s"]) for n, d in zip(numerators, denominators, strict=True)]
    return [r for r in by_round if r is not None]


def run(context: Context) -> ScenarioResult:
    options = context.options
    all_runs = interleaved(
        context,
        {
            "minimal": {"kind": "minimal"},
            "plain": {"kind": "plain"},
            "worker": {"kind": "worker"},
            "worker_snapshots": {"kind": "worker", "snapshots": True},
        },
        rounds=options.throughput_rounds,
    )
    minimal_runs, plain_runs, worker_runs, saving_runs = all_runs.values()
    minimal, plain, worker, saving = (median_run(runs) for runs in all_runs.values())
    rounds = round_ratios(worker_runs, plain_runs)
    # Issue 18's targets name the next-tick configuration; what the services' defaults (three horizons with
    # intervals, Page-Hinkley) cost is shown beside it, without a target.
    at_defaults = (
        drain(replace(context, options=replace(options, next_tick=False)), "worker") if options.next_tick else None
    )
    # The target reads the rounds' ratios, not the median runs' (which may come from different rounds).
    worker_over_plain = round(statistics.median(rounds), 3) if rounds else None
    metrics: dict[str, Any] = {
        "minimal": minimal,
        "plain": plain,
        "worker": worker,
        "worker_snapshots": saving,
        "worker_over_plain": worker_over_plain,
        "worker_over_plain_of_median_runs": ratio(worker["rate_per_s"], plain["rate_per_s"]),
        "plain_over_minimal": ratio(plain["rate_per_s"], minimal["rate_per_s"]),
        "worker_over_minimal": ratio(worker["rate_per_s"], minimal["rate_per_s"]),
        "worker_at_defaults": at_defaults,
        "worker_over_plain_by_round": rounds,
        "all_rates": {
            "minimal": [r["rate_per_s"] for r in minimal_runs],
            "plain": [r["rate_per_s"] for r in plain_runs],
            "worker": [r["rate_per_s"] for r in worker_runs],
            "worker_snapshots": [r["rate_per_s"] for r in saving_runs],
        },
    }
    rows = [
        Row("minimal loop drain rate (no tickcast handler)", minimal["rate_per_s"], "ticks/s"),
        Row("plain loop drain rate (ceiling)", plain["rate_per_s"], "ticks/s"),
        Row("worker drain rate", worker["rate_per_s"], "ticks/s"),
        at_least("worker / plain", worker_over_plain, "x", TARGET_WORKER_OVER_PLAIN),
        *(
            [Row(f"worker / plain, round {number}", value, "x") for number, value in enumerate(rounds, start=1)]
            if len(rounds) > 1
            else []
        ),
        Row("plain / minimal (the handler's own overhead)", metrics["plain_over_minimal"], "x"),
        Row("worker / minimal", metrics["worker_over_minimal"], "x"),
        at_most("worker CPU per tick", worker["process_cpu_us_per_tick"], "µs", TARGET_WORKER_CPU_US),
        Row("plain loop CPU per tick", plain["process_cpu_us_per_tick"], "µs"),
        Row("minimal loop CPU per tick", minimal["process_cpu_us_per_tick"], "µs"),
        Row("broker CPU during worker drain", worker["broker_cores"], "cores"),
        Row("broker CPU during plain drain", plain["broker_cores"], "cores"),
        Row("worker drain rate, snapshots on (default cadence)", saving["rate_per_s"], "ticks/s"),
        Row("snapshots on / off", ratio(saving["rate_per_s"], worker["rate_per_s"]), "x"),
    ]
    if at_defaults is not None:
        rows += [
            Row(
                "worker drain rate at the services' defaults (3 horizons, intervals, drift)",
                at_defaults["rate_per_s"],
                "ticks/s",
            ),
            Row("worker CPU per tick at the services' defaults", at_defaults["process_cpu_us_per_tick"], "µs"),
        ]
    notes = []
    if options.profile:
        profiled = drain(context, "worker", profile=True)
        metrics["profile"] = profiled["profile"]
        metrics["profiled_run"] = {k: v for k, v in profiled.items() if k not in ("profile", "rate_timeline")}
        notes.append(
            f"py-spy profile from a separate worker drain (rate {profiled['rate_per_s']} ticks/s while sampled at "
            f"{options.profile_rate} Hz); not used for the ratios."
        )
    return ScenarioResult(
        name="throughput",
        title="Throughput: drain a backlog, minimal loop vs plain loop vs one worker",
        inputs={
            **options.drain_inputs(),
            "processes": "minimal loop, plain loop: 1 process each; worker: 1 `python -m tickcast worker`",
            "snapshots": "off for the plain loop and the worker (no state to save in the loop); on in the third run",
            "defaults": "one more worker drain at the services' defaults, no target" if options.next_tick else "-",
        },
        metrics=metrics,
        rows=rows,
        notes=notes,
    )
