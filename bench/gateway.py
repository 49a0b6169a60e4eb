"""``python -m bench.gateway``: one gateway in front of a pipeline fed ``--rate`` ticks/s (default 500).

Phases (``--only get,sse,broker``; all by default), each load from a process of its own:
- get: GET latest at ``--get-rate`` requests/s (Debian's ``wrk``; each connection waits 10 ms between
  requests, so about ``get_rate / 83`` connections make the rate): latency percentiles, and the gateway's CPU
  time per request (its CPU over the window, less what it spends reading the stream in an idle window as
  long, over the requests); ``--profile`` runs py-spy on the gateway meanwhile;
- sse: prediction made (``predicted_at``, the worker's clock) to event received, for 1 client and for
  ``--clients`` clients (each subscribed to one symbol, round robin), memory per client, and the gateway's
  CPU seconds meanwhile, and the gateway's own fan-out delay histogram over the same window (``--profile``:
  py-spy on it and on one of the load's ``--load-processes`` while the clients stream); with
  ``--baseline-src``, a second gateway from other code is measured the same way just before;
- broker: the broker's CPU seconds over the same window with no clients, with ``--side-clients`` SSE
  clients through this gateway, and with as many clients each reading Kafka itself (tickcast.client).

Every number comes with the load average at the time (the bench machine is shared). Writes
``bench/results/gateway.json`` and prints it. Not part of ``make bench``'s default scenarios.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.core import hold
from bench.feeds import PacedFeed
from bench.gateway_load import (
    CpuMeter,
    bucket_quantile,
    fanout_buckets,
    load_average,
    load_result,
    sse_clients,
    start_load,
    wrk_get,
)
from bench.pyspy import PySpy, summarise
from tickcast.broker.embedded import EmbeddedBroker
from tickcast.producer.synthetic import symbol_names
from tickcast.testing.gateway import GatewayProcess
from tickcast.testing.pipeline import Pipeline, new_unique, wait_for_assignment
from tickcast.testing.waiting import wait_for

RESULTS = Path(__file__).parent / "results" / "gateway.json"
PHASES = ("get", "sse", "broker")
#: Seconds a load runs before (and after) the window in which the broker's CPU is measured.
SETTLE_S = 8.0


def measure_get(gateway: GatewayProcess, url: str, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    assert gateway.process is not None  # nosec B101 # narrows the type: started by the caller
    meter = CpuMeter(gateway.process.pid)
    idle_window = min(args.seconds, 10.0)
    meter.start()
    hold(idle_window)
    reading_cpu_per_s = meter.stop() / idle_window
    spy = PySpy(log_dir / "gateway-get.raw") if args.profile else None
    if spy is not None:
        spy.attach(gateway.process.pid)
    load_before = load_average()
    meter.start()
    result = wrk_get(url, args.get_rate, args.seconds)
    cpu_s = meter.stop()
    if spy is not None:
        spy.stop()
    requests = result.get("requests") or 0
    serving_cpu_s = max(0.0, cpu_s - reading_cpu_per_s * args.seconds)
    result.update(
        gateway_cpu_s=cpu_s,
        gateway_cpu_s_reading_only=round(reading_cpu_per_s * args.seconds, 3),
        cpu_us_per_request=round(serving_cpu_s / requests * 1e6, 1) if requests else None,
        load_before=load_before,
        load_after=load_average(),
    )
    if spy is not None and requests:
        profile = summarise(spy.output, int(requests), spy.rate, result["cpu_us_per_request"])
        result["profile_top_self"] = profile["top_self"][:12]
        result["profile_top_inclusive"] = profile["top_inclusive"][:12]
    return result


def measure_sse(gateway: GatewayProcess, args: argparse.Namespace, names: list[str], log_dir: Path) -> dict[str, Any]:
    assert gateway.process is not None  # nosec B101 # narrows the type: started by the caller
    results: dict[str, Any] = {"load_before": load_average()}
    results["sse_1_client"] = sse_clients(gateway.url, 1, args.seconds, names)
    process = psutil.Process(gateway.process.pid)
    rss_before = process.memory_info().rss
    meter = CpuMeter(gateway.process.pid).start()
    buckets_before = gateway_fanout(gateway)
    load = start_load(
        "tickcast.testing.sse_load",
        gateway.url,
        str(args.clients),
        str(args.seconds),
        ",".join(names),
        f"--processes={args.load_processes}",
    )
    hold(args.seconds / 4)  # every client connected and streaming
    spies = (
        {"gateway": PySpy(log_dir / "gateway-sse.raw"), "load": PySpy(log_dir / "load-sse.raw")} if args.profile else {}
    )
    if spies:
        spies["gateway"].attach(gateway.process.pid)
        # One of the load's processes (each runs the same code); the load itself if it did not fork.
        children = psutil.Process(load.pid).children()
        spies["load"].attach(children[0].pid if children else load.pid)
    hold(args.seconds / 4)
    rss_with = process.memory_info().rss
    clients_seen = gateway.clients()
    many = results[f"sse_{args.clients}_clients"] = load_result(load, args.seconds + 120)
    buckets_after = gateway_fanout(gateway)
    # The gateway's own view (read off Kafka -> written to the connection, per write of its oldest event), so a
    # client-side delay far above it points at the load generator (or the kernel), not the fan-out.
    results["gateway_fanout_ms"] = {
        f"p{round(q * 100)}_bucket_upper": bucket_quantile(buckets_before, buckets_after, q) for q in (0.5, 0.99)
    }
    for name, spy in spies.items():
        spy.stop()
        profile = summarise(spy.output, max(1, many["events"]), spy.rate)
        results[f"profile_{name}_top_self"] = profile["top_self"][:12]
        results[f"profile_{name}_top_inclusive"] = profile["top_inclusive"][:14]
    results["gateway_cpu_s"] = meter.stop()
    results["memory"] = {
        "gateway_rss_mb_before": round(rss_before / 2**20, 1),
        "gateway_rss_mb_with_clients": round(rss_with / 2**20, 1),
        "kb_per_client": round((rss_with - rss_before) / args.clients / 1024, 1),
        "clients_by_gateway_metric_mid_run": clients_seen,
    }
    results["load_after"] = load_average()
    return results


def gateway_fanout(gateway: GatewayProcess) -> list[tuple[float, float]]:
    return fanout_buckets(httpx.get(f"{gateway.url}/metrics", timeout=10).text)


def measure_broker(
    broker_pid: int, gateway: GatewayProcess, pipeline: Pipeline, args: argparse.Namespace, names: list[str]
) -> dict[str, Any]:
    """Broker CPU seconds over one window each: pipeline alone, N SSE clients via the gateway, N Kafka clients.

    Each load runs :data:`SETTLE_S` longer on both sides of the window, so connecting is left out: the rows
    compare the steady cost of serving. Both loads run at nice 19: a hundred consumers in one process
    otherwise took the broker's CPU on the shared machine, and the broker did less work, not more.
    """
    clients, seconds = args.side_clients, args.seconds
    meter = CpuMeter(broker_pid)
    rows: dict[str, Any] = {"clients": clients, "seconds": seconds}

    def window() -> float:
        meter.start()
        hold(seconds)
        return meter.stop()

    rows["no_clients"] = {"broker_cpu_s": window(), "load": load_average()}
    span = str(seconds + 2 * SETTLE_S)
    load = start_load("tickcast.testing.sse_load", gateway.url, str(clients), span, ",".join(names), nice=True)
    hold(SETTLE_S)
    cpu = window()
    rows["via_gateway"] = {"broker_cpu_s": cpu, "load": load_average(), **load_result(load, seconds + 120)}
    load = start_load("tickcast.testing.kafka_load", str(clients), span, ",".join(names), env=pipeline.env(), nice=True)
    hold(SETTLE_S)
    cpu = window()
    rows["own_kafka_consumers"] = {"broker_cpu_s": cpu, "load": load_average(), **load_result(load, seconds + 300)}
    return rows


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
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measurement")
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma-separated phases of {PHASES}")
    parser.add_argument("--profile", action="store_true", help="py-spy on the gateway in the get and sse phases")
    args = parser.parse_args(argv)
    phases = set(args.only.split(","))
    log_dir = Path(tempfile.mkdtemp(prefix="tickcast-bench-gateway-"))
    names = symbol_names(args.symbols)
    results: dict[str, Any] = {
        "machine": {"cpus": psutil.cpu_count(), "platform": platform.platform(), "load_at_start": load_average()},
        "inputs": vars(args),
    }
    with EmbeddedBroker(log_file=log_dir / "broker.log") as broker:
        pipeline = Pipeline(broker.bootstrap_servers, new_unique(), log_dir)
        pipeline.create_topics()
        gateway: GatewayProcess | None = None
        baseline: GatewayProcess | None = None
        feed = PacedFeed(pipeline, args.rate, args.symbols)
        try:
            wait_for_assignment(pipeline, pipeline.start_workers(args.workers), timeout_s=90)
            gateway = GatewayProcess(pipeline.env(), log_dir / "gateway.log").start()
            if args.baseline_src:
                env = {**pipeline.env(), "PYTHONPATH": args.baseline_src}
                baseline = GatewayProcess(env, log_dir / "gateway-baseline.log").start()
            feed.start()
            known = lambda: len(httpx.get(f"{gateway.url}/v1/symbols", timeout=5).json()["symbols"])  # noqa: E731
            wait_for(lambda: known() == args.symbols, 60, "every symbol at the gateway", diagnostics=gateway.log_tail)
            if "get" in phases:
                url = f"{gateway.url}/v1/predictions/{names[0]}"
                results["get_latest"] = measure_get(gateway, url, args, log_dir)
            if "sse" in phases:
                if baseline is not None:
                    # Same pipeline, same minute: the A/B a shared machine allows (its load changes by the minute).
                    results["sse_baseline"] = measure_sse(baseline, args, names, log_dir / "baseline")
                results["sse"] = measure_sse(gateway, args, names, log_dir)
            if "broker" in phases and broker.pid is not None:
                results["broker_cpu"] = measure_broker(broker.pid, gateway, pipeline, args, names)
            results["pipeline"] = httpx.get(f"{gateway.url}/v1/pipeline", timeout=5).json()
        finally:
            feed.stop()
            for started in (gateway, baseline):
                if started is not None:
                    started.stop()
            pipeline.stop()
    results["machine"]["load_at_end"] = load_average()
    results["logs"] = str(log_dir)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
