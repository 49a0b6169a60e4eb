"""Scenario ``peers``: the same backlog drained by tickcast and by each peer, in two views.

View 1 (framework overhead): each peer calls tickcast's handler. View 2 (what a user of the framework
would write): each runs the same features and model recipe (:mod:`bench.peers.recipe`) with its own
state, against the tickcast worker as it is; the minimal loop runs the same recipe with no framework and
none of the worker's checks, so its ratio to the fastest peer is the most view 2 could show. Each run is a
:func:`bench.throughput.drain` on fresh topics: drain rate from the processes' own ``predicted_at`` stamps,
CPU from /proc. A peer must answer every tick exactly once (checked).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from bench.core import UNMEASURED, Context, Row, ScenarioResult, at_least, ratio
from bench.processors import PEERS, USER_PEERS
from bench.throughput import drain

#: The package each peer needs (the ``bench-peers`` extra).
PACKAGES = {"quix": "quixstreams", "bytewax": "bytewax", "faust": "faust"}
#: Drained beside the peers, never counted as one.
OURS = ("worker", "plain", "minimal")
#: View 1: tickcast's worker must drain at least as fast as the fastest peer running the same handler.
TARGET_OVER_FASTEST_PEER = 1.0
#: View 2: and well ahead of what a user of the fastest peer would write.
TARGET_OVER_FASTEST_USER_PEER = 1.3


def package_of(peer: str) -> str:
    return PACKAGES[peer.split("-")[0]]


def run(context: Context) -> ScenarioResult:
    ticks = context.options.ticks
    # The minimal loop is the recipe with no framework and none of the handler's checks: the ceiling of view 2.
    runs: dict[str, dict[str, Any]] = {
        "worker": drain(context, "worker"),
        "plain": drain(context, "plain"),
        "minimal": drain(context, "minimal"),
    }
    notes: list[str] = []
    for peer in (*PEERS, *USER_PEERS):
        if importlib.util.find_spec(package_of(peer)) is None:
            notes.append(f"{peer} skipped: {package_of(peer)} is not installed (pip install -e '.[bench-peers]')")
            continue
        try:
            runs[peer] = drain(context, peer)
        except UNMEASURED as exc:
            notes.append(f"{peer} could not be measured: {str(exc).splitlines()[0]}")
    worker = runs["worker"]
    rows: list[Row] = []
    peer_rates: dict[str, float] = {}
    user_rates: dict[str, float] = {}
    for name, result in runs.items():
        once = result["answered"] == ticks and result["duplicates"] == 0
        if not once:
            notes.append(f"{name} answered {result['answered']} of {ticks} ticks, {result['duplicates']} twice")
        rows.append(Row(f"{name}: drain rate", result["rate_per_s"], "ticks/s"))
        rows.append(Row(f"{name}: CPU per tick", result["process_cpu_us_per_tick"], "µs"))
        if name not in OURS:
            rows.append(Row(f"tickcast worker / {name}", ratio(worker["rate_per_s"], result["rate_per_s"]), "x"))
            if once and result["rate_per_s"]:
                (user_rates if name in USER_PEERS else peer_rates)[name] = result["rate_per_s"]
    for view, rates, target in (
        ("view 1", peer_rates, TARGET_OVER_FASTEST_PEER),
        ("view 2", user_rates, TARGET_OVER_FASTEST_USER_PEER),
    ):
        fastest = max(rates, key=lambda name: rates[name], default=None)
        if fastest is not None:
            metric = f"{view}: tickcast worker / fastest peer ({fastest})"
            rows.append(at_least(metric, ratio(worker["rate_per_s"], rates[fastest]), "x", target))
            if view == "view 2":
                ceiling = ratio(runs["minimal"]["rate_per_s"], rates[fastest])
                rows.append(Row(f"view 2 ceiling: minimal loop / fastest peer ({fastest})", ceiling, "x"))
    return ScenarioResult(
        name="peers",
        title="Peers: view 1 calls tickcast's handler (framework overhead); view 2 (-user) is what a user would write",
        inputs={**context.options.drain_inputs(), "view 1": list(PEERS), "view 2": list(USER_PEERS)},
        metrics={"runs": {name: {k: v for k, v in r.items() if k != "rate_timeline"} for name, r in runs.items()}},
        rows=rows,
        notes=notes,
    )
