"""Scenario ``peers``, view 1 (framework overhead): the same backlog drained by each peer calling tickcast's handler.

Each run is a :func:`bench.throughput.drain` on fresh topics: drain rate from the processes' own
``predicted_at`` stamps, CPU from /proc. A peer must answer every tick exactly once (checked).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from bench.core import UNMEASURED, Context, Row, ScenarioResult, at_least, ratio
from bench.processors import PEERS
from bench.throughput import drain

#: The package each peer needs (the ``bench-peers`` extra).
PACKAGES = {"quix": "quixstreams", "bytewax": "bytewax", "bytewax-recovery": "bytewax", "faust-naive": "faust"}
#: tickcast's worker must drain at least as fast as the fastest peer running the same handler.
TARGET_OVER_FASTEST_PEER = 1.0


def run(context: Context) -> ScenarioResult:
    ticks = context.options.ticks
    runs: dict[str, dict[str, Any]] = {"worker": drain(context, "worker"), "plain": drain(context, "plain")}
    notes: list[str] = []
    for peer in PEERS:
        if importlib.util.find_spec(PACKAGES[peer]) is None:
            notes.append(f"{peer} skipped: {PACKAGES[peer]} is not installed (pip install -e '.[bench-peers]')")
            continue
        try:
            runs[peer] = drain(context, peer)
        except UNMEASURED as exc:
            notes.append(f"{peer} could not be measured: {str(exc).splitlines()[0]}")
    worker = runs["worker"]
    rows: list[Row] = []
    peer_rates: dict[str, float] = {}
    for name, result in runs.items():
        once = result["answered"] == ticks and result["duplicates"] == 0
        if not once:
            notes.append(f"{name} answered {result['answered']} of {ticks} ticks, {result['duplicates']} twice")
        rows.append(Row(f"{name}: drain rate", result["rate_per_s"], "ticks/s"))
        rows.append(Row(f"{name}: CPU per tick", result["process_cpu_us_per_tick"], "µs"))
        if name not in ("worker", "plain"):
            rows.append(Row(f"tickcast worker / {name}", ratio(worker["rate_per_s"], result["rate_per_s"]), "x"))
            if once and result["rate_per_s"]:
                peer_rates[name] = result["rate_per_s"]
    fastest = max(peer_rates, key=lambda name: peer_rates[name], default=None)
    if fastest is not None:
        rows.append(
            at_least(
                f"tickcast worker / fastest peer ({fastest})",
                ratio(worker["rate_per_s"], peer_rates[fastest]),
                "x",
                TARGET_OVER_FASTEST_PEER,
            )
        )
    return ScenarioResult(
        name="peers",
        title="Peers, view 1 (framework overhead): each calls tickcast's handler on the same backlog",
        inputs={**context.options.drain_inputs(), "peers": list(PEERS)},
        metrics={"runs": {name: {k: v for k, v in r.items() if k != "rate_timeline"} for name, r in runs.items()}},
        rows=rows,
        notes=notes,
    )
