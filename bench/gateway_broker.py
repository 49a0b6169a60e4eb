"""``bench.gateway``'s broker phase: what the broker does for N clients through a gateway and N own consumers.

Each row on a stack of its own (:mod:`bench.gateway_stack`), its window opening at the same time after the
feed's start, so no row is measured on a broker grown by the rows before it.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.core import hold
from bench.gateway_load import load_average, load_result, start_load
from bench.gateway_plan import lead_s
from bench.gateway_stack import Stack
from tickcast.testing.gateway import GatewayProcess

#: Seconds a load runs before (and after) the window in which the broker's CPU is measured.
SETTLE_S = 8.0


def measure_broker_row(
    kind: str, stack: Stack, gateway: GatewayProcess, args: argparse.Namespace, names: list[str]
) -> dict[str, Any]:
    """One row: the broker's CPU seconds over the window (distorted by the machine's load) and, with a load,
    what the load measured: for Kafka consumers librdkafka's own counts of requests and bytes, which the load
    does not distort. (The kernel's per-process I/O counts do not help: Tansu's socket sends and receives are
    not among them, they read 0.) A load runs :data:`SETTLE_S` longer on both sides of the window, so
    connecting is left out. No load runs niced: at nice 19 on a busy machine a hundred consumers got almost
    no CPU (127 events between them in 20 s), which made the comparison meaningless; the counts do not need it.
    """
    clients, seconds = args.side_clients, args.seconds
    stack.lead_in(lead_s(kind, seconds, args.warmup, SETTLE_S))
    span = str(seconds + 2 * SETTLE_S)
    symbols = ",".join(names)
    load = None
    if kind == "broker_via_gateway":
        load = start_load("tickcast.testing.sse_load", gateway.url, str(clients), span, symbols)
    elif kind in ("broker_gateway_consumer", "broker_own_consumers"):
        count = 1 if kind == "broker_gateway_consumer" else clients
        processes = f"--processes={min(count, args.load_processes)}"
        env = stack.pipeline.env() if stack.pipeline is not None else None
        load = start_load("tickcast.testing.kafka_load", str(count), span, symbols, processes, env=env)
    if load is not None:
        hold(SETTLE_S)
    stack.open_window()
    hold(seconds)
    stack.close_window()
    row: dict[str, Any] = {"broker_cpu_s": stack.record()["broker_cpu_s_window"], "load": load_average()}
    if load is not None:
        row["clients_result"] = load_result(load, seconds + 300)
    return row
