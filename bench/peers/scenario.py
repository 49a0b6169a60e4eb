"""Scenario ``peers``: the same backlog drained by tickcast and by each peer, in two views.

View 1 (framework overhead): each peer calls tickcast's handler. View 2 (what a user of the framework
would write): each runs the same features and model recipe (:mod:`bench.peers.recipe`) with its own
state and its own serializers (Quix's and confluent-kafka's Schema Registry Avro serde, against
:mod:`tickcast.testing.registry_stub`; Faust has none and keeps fastavro calls), against the tickcast worker
as it is; the minimal loop runs the same recipe with no framework, fastavro calls and none of the worker's
checks, so its ratio to the fastest peer is the most view 2 could show. Each run is a
:func:`bench.throughput.drain` on fresh topics: drain rate from the processes' own ``predicted_at`` stamps,
CPU from /proc.

The drains run in ``--peers-rounds`` rounds (2; ``--repeat`` sets them too; :func:`bench.throughput.interleaved`):
every configuration once per round, the order reversed every other round. A ratio is the median of the rounds'
ratios, each between two drains of the same round, so the machine's drift over the minutes the scenario takes
does not land between tickcast and one peer. A run counts only if it answered every tick exactly once (checked).
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.core import Context, Row, ScenarioResult, at_least, ratio
from bench.peers import venv
from bench.processors import PEERS, USER_PEERS
from bench.throughput import interleaved, median_run

#: The package each peer needs (the ``bench-peers`` extra, in the peers' venv).
PACKAGES = {"quix": "quixstreams", "bytewax": "bytewax", "faust": "faust"}
#: Drained beside the peers, never counted as one.
OURS = ("worker", "plain", "minimal")
#: View 1: tickcast's worker must drain at least as fast as the fastest peer running the same handler.
TARGET_OVER_FASTEST_PEER = 1.0
#: View 2: and well ahead of what a user of the fastest peer would write.
TARGET_OVER_FASTEST_USER_PEER = 1.3


def package_of(peer: str) -> str:
    return PACKAGES[peer.split("-")[0]]


def _available(notes: list[str]) -> tuple[list[str], dict[str, Any]]:
    """The peers the peers' venv can run, in :data:`PEERS` then :data:`USER_PEERS` order, and its versions.

    A peer whose package is missing is skipped with a note; a missing venv raises :class:`BenchError` (one line).
    Its own function so the unit tests, whose drains are fakes, can pick the peers without a venv.
    """
    found = venv.probe(set(PACKAGES.values()))
    peers = []
    for peer in (*PEERS, *USER_PEERS):
        if package_of(peer) in found["found"]:
            peers.append(peer)
        else:
            notes.append(f"{peer} skipped: {package_of(peer)} is not installed in {venv.PEERS_VENV}")
    return peers, found["versions"]


def counted(result: dict[str, Any], ticks: int) -> bool:
    """Whether a run counts toward rates and ratios: measured, with a rate, every tick answered exactly once.

    >>> counted({"answered": 10, "duplicates": 0, "rate_per_s": 5.0}, 10)
    True
    >>> counted({"answered": 10, "duplicates": 1, "rate_per_s": 5.0}, 10), counted({"failed": "timed out"}, 10)
    (False, False)
    """
    if "failed" in result:
        return False
    return result["answered"] == ticks and result["duplicates"] == 0 and bool(result["rate_per_s"])


def by_round(numerators: list[dict[str, Any]], denominators: list[dict[str, Any]], ticks: int) -> list[float | None]:
    """Round by round, the numerator's rate over the denominator's; None where either run does not count or the
    denominator sat out the round.

    >>> run = lambda rate, duplicates=0: {"answered": 4, "duplicates": duplicates, "rate_per_s": rate}
    >>> by_round([run(30.0), run(20.0), run(10.0)], [run(20.0), run(10.0, duplicates=1)], 4)
    [1.5, None, None]
    """
    ratios: list[float | None] = []
    for number, numerator in enumerate(numerators):
        denominator = denominators[number] if number < len(denominators) else None
        if denominator is None or not (counted(numerator, ticks) and counted(denominator, ticks)):
            ratios.append(None)
        else:
            ratios.append(ratio(numerator["rate_per_s"], denominator["rate_per_s"]))
    return ratios


def median_of(ratios: list[float | None]) -> float | None:
    """The median of the rounds' ratios that counted; None if none did.

    >>> median_of([1.2, None, 0.9, 1.0]), median_of([0.9, 1.0]), median_of([None])
    (1.0, 0.95, None)
    """
    kept = [r for r in ratios if r is not None]
    return round(statistics.median(kept), 3) if kept else None


def _spread(ratios: list[float | None]) -> str:
    return " / ".join("-" if r is None else f"{r:.3f}" for r in ratios)


def run(context: Context) -> ScenarioResult:
    ticks = context.options.ticks
    notes: list[str] = []
    # Before any drain: a missing venv fails the scenario in a second, not after the worker's drains.
    peers, versions = _available(notes)
    rounds = context.options.peers_rounds
    # The minimal loop is the recipe with no framework and none of the handler's checks: the ceiling of view 2.
    configurations = {name: {"kind": name} for name in (*OURS, *peers)}
    runs = interleaved(context, configurations, may_fail=peers, rounds=rounds)
    rows: list[Row] = []
    # The run of median rate among those that count stands for a configuration's rate and CPU per tick.
    standing: dict[str, dict[str, Any]] = {}
    worker_over: dict[str, list[float | None]] = {}
    for name, results in runs.items():
        for number, result in enumerate(results, 1):
            if "failed" in result:
                notes.append(f"{name} could not be measured in round {number}: {result['failed']}; it sat out the rest")
            elif not counted(result, ticks):
                notes.append(
                    f"{name}, round {number}: answered {result['answered']} of {ticks} ticks, "
                    f"{result['duplicates']} twice: not counted in any rate or ratio"
                )
        kept = [r for r in results if counted(r, ticks)]
        if kept:
            standing[name] = median_run(kept)
        rows.append(Row(f"{name}: drain rate", standing[name]["rate_per_s"] if kept else None, "ticks/s"))
        rows.append(Row(f"{name}: CPU per tick", standing[name]["process_cpu_us_per_tick"] if kept else None, "µs"))
        if name not in OURS:
            worker_over[name] = by_round(runs["worker"], results, ticks)
            rows.append(Row(f"tickcast worker / {name}", median_of(worker_over[name]), "x"))
    fastest: dict[str, str] = {}
    ceiling_by_round: list[float | None] = []
    for view, members, target in (
        ("view 1", PEERS, TARGET_OVER_FASTEST_PEER),
        ("view 2", USER_PEERS, TARGET_OVER_FASTEST_USER_PEER),
    ):
        rates = {name: standing[name]["rate_per_s"] for name in members if name in standing}
        if not rates:
            continue
        fastest[view] = best = max(rates, key=lambda name: rates[name])
        rows.append(
            at_least(f"{view}: tickcast worker / fastest peer ({best})", median_of(worker_over[best]), "x", target)
        )
        notes.append(f"{view}: worker / {best} by round {_spread(worker_over[best])}")
        if view == "view 2":
            ceiling_by_round = by_round(runs["minimal"], runs[best], ticks)
            rows.append(Row(f"view 2 ceiling: minimal loop / fastest peer ({best})", median_of(ceiling_by_round), "x"))
            notes.append(f"view 2 ceiling: minimal / {best} by round {_spread(ceiling_by_round)}")
    notes.append(
        f"{rounds} round(s), the order reversed every other round; a ratio is the median of the "
        "rounds' ratios, a rate the median run's; the fastest peer of a view is the one of highest median-run rate"
    )
    metrics = {
        "runs": {name: [{k: v for k, v in r.items() if k != "rate_timeline"} for r in rs] for name, rs in runs.items()},
        "rates": {name: [r.get("rate_per_s") for r in rs] for name, rs in runs.items()},
        "counted": {name: [counted(r, ticks) for r in rs] for name, rs in runs.items()},
        "worker_over_peer_by_round": worker_over,
        "fastest_peer": fastest,
        "ceiling_by_round": ceiling_by_round,
        "peers_venv": {"python": str(venv.python()), "versions": versions},
    }
    return ScenarioResult(
        name="peers",
        title="Peers: view 1 calls tickcast's handler (framework overhead); view 2 (-user) is what a user would write",
        inputs={**context.options.drain_inputs(), "repeat": rounds, "view 1": list(PEERS), "view 2": list(USER_PEERS)},
        metrics=metrics,
        rows=rows,
        notes=notes,
    )
