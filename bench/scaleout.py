"""Scenario 2, scale-out: the same backlog drained by one worker and by two (fresh topics and group each).

Two numbers for two workers: the whole drain (as in scenario 1), and the steady window in which both
were answering. The first includes the join of the second worker and the tail of the bigger share,
since 50 symbols never hash evenly onto 8 partitions; the second is what the group sustains.

Each round drains one worker and two next to each other (the order alternating), and the target reads the
median of the rounds' ratios: on a shared 2-core VM one pair of drains spreads by ±15%.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.core import Context, Row, ScenarioResult, at_least, ratio
from bench.sampling import available_cpus
from bench.throughput import interleaved, median_run, round_ratios

TARGET_TWO_OVER_ONE = 1.7


def joint_bound(largest_share: float, cpu_bound: float) -> float:
    """The best two workers can do over one when key skew and cores both hold them back.

    While both drain, each runs at ``cpu_bound / 2`` of one worker's speed (at most 1); once the smaller share
    is done, the rest of the larger runs alone, at one worker's speed. The two bounds compound: each alone
    says more than both together.

    >>> joint_bound(0.5, 2.0), joint_bound(0.5, 1.72)
    (2.0, 1.72)
    >>> round(joint_bound(0.538, 1.72), 3)  # 50 symbols on 8 partitions, a broker on the same two cores
    1.631
    """
    speed_together = min(1.0, cpu_bound / 2)
    time_over_one = (1 - largest_share) / speed_together + (2 * largest_share - 1)
    return 1 / time_over_one


def run(context: Context) -> ScenarioResult:
    options = context.options
    runs = interleaved(
        context,
        {"one": {"kind": "worker", "processes": 1}, "two": {"kind": "worker", "processes": 2}},
        rounds=options.scaleout_rounds,
    )
    one, two = median_run(runs["one"]), median_run(runs["two"])
    by_round = round_ratios(runs["two"], runs["one"])
    whole = round(statistics.median(by_round), 3) if by_round else None
    steady = ratio(two["steady_rate_per_s"], one["rate_per_s"])
    # The best two workers can do with this key spread: the bigger share bounds the drain time.
    skew_bound = round(1 / two["largest_process_share"], 3)
    # The best two workers can do with the cores left to them: what the broker and the bench used while two
    # workers drained, taken from the machine, over what one worker used on its own.
    spare = available_cpus() - sum(two[name] or 0.0 for name in ("broker_cores", "bench_cores", "other_cores"))
    cpu_bound = round(min(2.0, spare / one["processes_cores"]), 3) if one["processes_cores"] else None
    both_bound = round(joint_bound(two["largest_process_share"], cpu_bound), 3) if cpu_bound else None
    metrics: dict[str, Any] = {
        "one_worker": one,
        "two_workers": two,
        "two_over_one": whole,
        "two_over_one_by_round": by_round,
        "two_over_one_of_median_runs": ratio(two["rate_per_s"], one["rate_per_s"]),
        "all_rates": {name: [r["rate_per_s"] for r in found] for name, found in runs.items()},
        "two_over_one_steady": steady,
        "skew_bound": skew_bound,
        "cpu_bound": cpu_bound,
        "joint_bound": both_bound,
    }
    rows = [
        Row("1 worker drain rate", one["rate_per_s"], "ticks/s"),
        Row("2 workers drain rate", two["rate_per_s"], "ticks/s"),
        at_least(
            "2 workers / 1 worker" + (f", median of {len(by_round)} rounds" if len(by_round) > 1 else ""),
            whole,
            "x",
            TARGET_TWO_OVER_ONE,
        ),
        *(
            [Row(f"2 workers / 1 worker, round {number}", value, "x") for number, value in enumerate(by_round, 1)]
            if len(by_round) > 1
            else []
        ),
        Row("2 workers / 1 worker, both answering", steady, "x"),
        Row("bound from key skew (1 / largest share)", skew_bound, "x"),
        Row("bound from free cores ((CPUs - broker - bench - others) / 1 worker's cores)", cpu_bound, "x"),
        Row("bound from both together (the larger share's tail runs alone)", both_bound, "x"),
        Row("1 worker CPU", one["processes_cores"], "cores"),
        Row("broker CPU, 2 workers", two["broker_cores"], "cores"),
        Row("workers CPU, 2 workers", two["processes_cores"], "cores"),
        Row("broker CPU, 1 worker", one["broker_cores"], "cores"),
        Row("bench (tap) CPU, 2 workers", two["bench_cores"], "cores"),
        Row("other processes' CPU, 2 workers", two["other_cores"], "cores"),
    ]
    notes = [
        f"Machine has {available_cpus()} CPUs shared by broker, workers and anything else running; two workers "
        "plus the broker need more than two cores to scale."
    ]
    if whole is not None and whole > skew_bound * 1.05:
        notes.append(
            f"2w/1w = {whole} is above what the key skew allows ({skew_bound}): the one-worker run was slowed by "
            "something outside it (machine load); run more rounds (--scaleout-rounds 5)."
        )
    return ScenarioResult(
        name="scaleout",
        title="Scale-out: 1 vs 2 workers on the same backlog",
        inputs={**options.drain_inputs(), "scaleout_rounds": options.scaleout_rounds},
        metrics=metrics,
        rows=rows,
        notes=notes,
    )
