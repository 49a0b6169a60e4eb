"""``python -m bench.gateway``: one gateway in front of a pipeline fed ``--rate`` ticks/s (default 500).

Phases (``--only get,sse,broker``; all by default), each load from a process of its own:
- get: GET latest at ``--get-rate`` requests/s (Debian's ``wrk``; each connection waits 10 ms between
  requests, so about ``get_rate / 83`` connections make the rate): latency percentiles, and the gateway's CPU
  time per request (its CPU over the window, less what it spends reading the stream in an idle window as
  long, over the requests); ``--profile`` runs py-spy on the gateway meanwhile;
- sse: prediction made (``predicted_at``, the worker's clock) to event received, for 1 client and for
  ``--clients`` clients (each subscribed to one symbol, round robin; delays counted after ``--warmup``
  seconds in which they all connect, a burst of the gateway's CPU), memory per client, and the gateway's
  CPU seconds meanwhile, and the gateway's own fan-out delay histogram over the same window (``--profile``:
  py-spy on it and on one of the load's ``--load-processes`` while the clients stream); the one client is on
  every symbol (``--one-client``), the delays are from the kernel's receipt stamps with the load's own lag
  beside them (``--sse-reader``), and ``gap_ms`` is the target's difference of p99s;
- with ``--baseline-src``, a second gateway from other code is measured in the get and sse phases too:
  before or after this one, alternately, ``--ab-rounds`` times (the machine's load drifts, so each side goes
  first in every other round), or at the same time (``--ab-together``: both gateways on one stack, each
  under the same machine load; it doubles the load);
- ``--gateway-env`` / ``--baseline-env KEY=VALUE``: settings of one gateway only, e.g. an A/B of
  ``TICKCAST_GATEWAY_SCHED_SLICE_US`` with the same code on both sides (``--baseline-src services``);
- ``--get-header 'NAME: VALUE'``: a header every GET sends, on both sides: with ``--gateway-env
  TICKCAST_GATEWAY_CLIENTS_FILE=...`` and a client's token, an A/B of the bearer-token check alone;
- ``--cpu-requests deployed,broker=1`` (or ``gateway=1000m,...``): CPU weights as Kubernetes gives pods their requests
  (cgroup v1 ``cpu.shares``, :mod:`bench.cgroups`; needs root); ``baseline=`` for the baseline gateway. Off
  by default; the results say which processes had which weight, so a run with it is never taken for one without;
- broker: the broker's CPU seconds over the same window with no clients,
  with ``--side-clients`` SSE clients through this gateway, with one consumer configured as the gateway's,
  and with as many clients each reading Kafka with a consumer of its own (librdkafka's request counts too).

Every phase (GET; one SSE client; many SSE clients; each broker row; each side and round of an A/B) runs on a
stack of its own, a fresh broker, topics, workers, feed and gateway (:mod:`bench.gateway_stack`), and opens its
window ``--window-at`` seconds after that feed's start: the embedded broker slows as it stores batches, so
phases sharing one would not be comparable (:mod:`bench.gateway_plan`). Each result has its stack's record:
the broker's CPU seconds in the window and since the feed started, and when the window really opened.

Every number comes with the load average at the time (the bench machine is shared). Writes
``bench/results/gateway.json`` (or ``--out``) and prints it. Not part of ``make bench``'s default scenarios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.cgroups import CpuGroups, parse_requests
from bench.gateway_broker import SETTLE_S, measure_broker_row
from bench.gateway_load import (
    load_average,
)
from bench.gateway_measures import measure_get, measure_sse_1, measure_sse_many
from bench.gateway_metrics import gap_ms
from bench.gateway_plan import GROUPS, Phase, merge, plan, result_key, run_window_at, settings_of
from bench.gateway_stack import Stack, StackOptions
from bench.gateway_topology import SHARED, split_cpus, topologies_of, topology_order
from tickcast.producer.synthetic import symbol_names
from tickcast.testing.gateway import GatewayProcess

RESULTS = Path(__file__).parent / "results" / "gateway.json"
PHASES = tuple(GROUPS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="ticks per second through the pipeline")
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--get-rate", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--side-clients", type=int, default=100, help="clients in the broker CPU comparison")
    parser.add_argument(
        "--load-processes", type=int, default=4, help="processes the SSE load generator spreads its clients over"
    )
    parser.add_argument(
        "--baseline-src",
        default="",
        help="a services/ folder of other code (e.g. `git archive` of main), whose gateway the sse phase measures too",
    )
    parser.add_argument(
        "--ab-together", action="store_true", help="with --baseline-src: load both gateways at once (a fair A/B)"
    )
    parser.add_argument(
        "--ab-rounds",
        type=int,
        default=1,
        help="with --baseline-src: rounds of each phase, baseline first in odd rounds, new first in even ones",
    )
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the measured gateway only (repeatable), e.g. TICKCAST_GATEWAY_SCHED_SLICE_US=300",
    )
    parser.add_argument(
        "--baseline-env", action="append", default=[], metavar="KEY=VALUE", help="the same, for the baseline gateway"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=15.0,
        help="seconds the SSE clients run before their delays count (all connect meanwhile: 10-13 s at load 8-12)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measurement")
    parser.add_argument(
        "--sse-reader",
        choices=("kernel", "asyncio"),
        default="kernel",
        help="the SSE load's reader: kernel (receipt stamped by the kernel, the load's own lag measured) or asyncio "
        "(the reader before it: read times only)",
    )
    parser.add_argument(
        "--one-client",
        choices=("every", "first"),
        default="every",
        help="the one-client baseline's symbols: every (the predictions the many see, each once) or first (one)",
    )
    parser.add_argument(
        "--get-header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header every GET of the get phase sends, on both sides of an A/B, e.g. 'Authorization: Bearer T' "
        "with --gateway-env TICKCAST_GATEWAY_CLIENTS_FILE=... (the cost of the check alone)",
    )
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma-separated phases of {PHASES}")
    parser.add_argument("--profile", action="store_true", help="py-spy on the gateway in the get and sse phases")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="where the results go (exploratory runs: not the committed file)"
    )
    parser.add_argument(
        "--cpu-requests",
        default="",
        metavar="ROLE=CPU,...",
        help="Kubernetes-style CPU requests as cgroup cpu.shares, e.g. gateway=1000m,broker=1,workers=500m, or "
        "deployed,broker=1 (the manifests' requests; roles: gateway, baseline, broker, workers; "
        "off by default: every process in the root cgroup)",
    )
    parser.add_argument(
        "--topology",
        default=SHARED,
        help="shared (every process on every core) or split (the gateway alone on the last core, as a pod with "
        "exclusive cores; the rest on the others: bench.gateway_topology); shared,split alternates them per round "
        "(--ab-rounds rounds)",
    )
    parser.add_argument(
        "--window-at",
        type=float,
        default=None,
        help="seconds from each phase's feed start to its window (the same in every phase; default: the longest "
        "lead-in of any phase, --warmup or the GET phase's idle 10 s, plus 5 s of set-up, rounded up to 5 s)",
    )
    args = parser.parse_args(argv)
    requests = parse_requests(args.cpu_requests)
    if requests:
        CpuGroups(tag=str(os.getpid())).check()
    only = args.only.split(",")
    try:
        topologies = topologies_of(args.topology)
        if topologies != [SHARED]:
            split_cpus(os.sched_getaffinity(0))
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    with_baseline = bool(args.baseline_src)
    phases = plan(only, args.ab_rounds if with_baseline else 1, with_baseline, args.ab_together)
    try:
        at = run_window_at(args.window_at, args.seconds, args.warmup, SETTLE_S)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    options = StackOptions(
        rate=args.rate,
        symbols=args.symbols,
        workers=args.workers,
        window_at_s=at,
        gateway_env=settings_of(args.gateway_env),
        baseline_src=args.baseline_src,
        baseline_env=settings_of(args.baseline_env),
        cpu_requests=requests,
    )
    log_dir = Path(tempfile.mkdtemp(prefix="tickcast-bench-gateway-"))
    results: dict[str, Any] = {
        "machine": {"cpus": psutil.cpu_count(), "platform": platform.platform(), "load_at_start": load_average()},
        "inputs": vars(args),
        "method": METHOD,
        "window_at_s": at,
        "topologies": topologies,
    }
    if "broker" in only:
        results["broker_cpu"] = {"clients": args.side_clients, "seconds": args.seconds}
    rounds = args.ab_rounds if with_baseline else 1
    # Several topologies: each round runs every phase in each, in alternating order (keys end in _round{N}_{name}).
    topology_rounds = args.ab_rounds if len(topologies) > 1 else 1
    number = 0
    for topology_round in range(topology_rounds):
        for topology in topology_order(topology_round, topologies):
            suffix = f"_round{topology_round + 1}_{topology}" if len(topologies) > 1 else ""
            for phase in phases:
                number += 1
                log = log_dir / f"{number:02d}-{phase.label}{suffix}"
                measured = run_phase(phase, options, args, log, topology)
                for side, found in measured.items():
                    key = result_key(phase.kind, side, phase.round, rounds)
                    merge(results, phase.kind, key if key == "broker_cpu" else key + suffix, found, args.clients)
    for key, found in results.items():
        if key.startswith("sse") and isinstance(found, dict):
            found["gap_ms"] = gap_ms(found, args.clients)
    results["machine"]["load_at_end"] = load_average()
    results["logs"] = str(log_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2, default=str))


#: What the results' ``method`` says about how the phases were measured.
METHOD = (
    "each phase (and each side of an A/B) on a fresh broker, topics, workers, feed and gateway; its window "
    "opens window_at_s after that feed's start (the embedded broker slows as it stores batches)"
)
MEASURES: dict[str, Callable[[Stack, GatewayProcess, argparse.Namespace, list[str]], dict[str, Any]]] = {
    "get": measure_get,
    "sse_1": measure_sse_1,
    "sse_many": measure_sse_many,
}


def run_phase(
    phase: Phase, options: StackOptions, args: argparse.Namespace, log_dir: Path, topology: str = SHARED
) -> dict[str, Any]:
    """One phase on a stack of its own: side -> what it measured, with the stack's record (broker CPU, timeline)
    and the pipeline's own stats at the end."""
    names = symbol_names(args.symbols)
    with Stack(options, phase.sides, log_dir, tag=phase.label, topology=topology) as stack:

        def measure(side: str) -> dict[str, Any]:
            gateway = stack.gateways[side]
            if phase.kind in MEASURES:
                return MEASURES[phase.kind](stack, gateway, args, names)
            return measure_broker_row(phase.kind, stack, gateway, args, names)

        # --ab-together: both gateways measured at once, on one stack, under the same machine load.
        with ThreadPoolExecutor(len(phase.sides)) as pool:
            running = {side: pool.submit(measure, side) for side in phase.sides}
            measured = {side: future.result() for side, future in running.items()}
        record = {**stack.record(), "cpu_requests": stack.cpu_requests}
        sent = dict(header.split(": ", 1) for header in args.get_header)  # a gateway with a clients file wants it
        pipeline = httpx.get(f"{stack.gateways[phase.sides[0]].url}/v1/pipeline", headers=sent, timeout=5).json()
    return {side: {**found, "stack": record, "pipeline": pipeline} for side, found in measured.items()}


if __name__ == "__main__":
    main()
