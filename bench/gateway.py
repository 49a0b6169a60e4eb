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
  py-spy on it and on one of the load's ``--load-processes`` while the clients stream);
- with ``--baseline-src``, a second gateway from other code is measured in the get and sse phases too:
  before or after this one, alternately, ``--ab-rounds`` times (the pipeline slows during a run, so each
  side goes first in every other round), or at the same time (``--ab-together``: each under the same
  machine load, which is the only fair A/B on a shared machine; it doubles the load);
- ``--gateway-env`` / ``--baseline-env KEY=VALUE``: settings of one gateway only, e.g. an A/B of
  ``TICKCAST_GATEWAY_SCHED_SLICE_US`` with the same code on both sides (``--baseline-src services``);
- ``--cpu-requests deployed,broker=1`` (or ``gateway=1000m,...``): CPU weights as Kubernetes gives pods their requests
  (cgroup v1 ``cpu.shares``, :mod:`bench.cgroups`; needs root); ``baseline=`` for the baseline gateway. Off
  by default; the results say which processes had which weight, so a run with it is never taken for one without;
- broker: the broker's CPU seconds over the same window with no clients,
  with ``--side-clients`` SSE clients through this gateway, with one consumer configured as the gateway's,
  and with as many clients each reading Kafka with a consumer of its own (librdkafka's request counts too).

Every number comes with the load average at the time (the bench machine is shared). Writes
``bench/results/gateway.json`` (or ``--out``) and prints it. Not part of ``make bench``'s default scenarios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.cgroups import CpuGroups, parse_requests
from bench.core import hold
from bench.feeds import PacedFeed
from bench.gateway_load import (
    CpuMeter,
    bucket_quantile,
    histogram_buckets,
    load_average,
    load_result,
    observed,
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
    metrics_before = scrape(gateway)
    meter.start()
    result = wrk_get(url, args.get_rate, args.seconds)
    cpu_s = meter.stop()
    result["stalls"] = stalls(metrics_before, scrape(gateway))
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


def measure_get_of(
    gateway: GatewayProcess, args: argparse.Namespace, names: list[str], log_dir: Path
) -> dict[str, Any]:
    return measure_get(gateway, f"{gateway.url}/v1/predictions/{names[0]}", args, log_dir)


def measure_sse(gateway: GatewayProcess, args: argparse.Namespace, names: list[str], log_dir: Path) -> dict[str, Any]:
    assert gateway.process is not None  # nosec B101 # narrows the type: started by the caller
    results: dict[str, Any] = {"load_before": load_average()}
    results["sse_1_client"] = sse_clients(gateway.url, 1, args.seconds, names)
    process = psutil.Process(gateway.process.pid)
    rss_before = process.memory_info().rss
    load = start_load(
        "tickcast.testing.sse_load",
        gateway.url,
        str(args.clients),
        str(args.seconds + args.warmup),
        ",".join(names),
        f"--processes={args.load_processes}",
        f"--warmup={args.warmup}",
    )
    hold(args.warmup)  # every client connected and streaming: the window starts (as the load's own does)
    meter = CpuMeter(gateway.process.pid).start()
    metrics_before = scrape(gateway)
    buckets_before = histogram_buckets(metrics_before, FANOUT)
    spies = (
        {"gateway": PySpy(log_dir / "gateway-sse.raw"), "load": PySpy(log_dir / "load-sse.raw")} if args.profile else {}
    )
    if spies:
        spies["gateway"].attach(gateway.process.pid)
        # One of the load's processes (each runs the same code); the load itself if it did not fork.
        children = psutil.Process(load.pid).children()
        spies["load"].attach(children[0].pid if children else load.pid)
    hold(args.seconds / 2)
    rss_with = process.memory_info().rss
    clients_seen = gateway.clients()
    many = results[f"sse_{args.clients}_clients"] = load_result(load, args.seconds + 120)
    results["gateway_cpu_s"] = meter.stop()
    # Reading the stream is in it too (a small part: ~500 predictions/s against ~10,000 events/s at 1,000 clients).
    results["gateway_cpu_us_per_event"] = (
        round(results["gateway_cpu_s"] / many["events"] * 1e6, 2) if many["events"] else None
    )
    metrics_after = scrape(gateway)
    buckets_after = histogram_buckets(metrics_after, FANOUT)
    results["stalls"] = stalls(metrics_before, metrics_after)
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
    results["memory"] = {
        "gateway_rss_mb_before": round(rss_before / 2**20, 1),
        "gateway_rss_mb_with_clients": round(rss_with / 2**20, 1),
        "kb_per_client": round((rss_with - rss_before) / args.clients / 1024, 1),
        "clients_by_gateway_metric_mid_run": clients_seen,
    }
    results["load_after"] = load_average()
    return results


FANOUT = "tickcast_gateway_fanout_delay_seconds"
LOOP_LAG = "tickcast_gateway_loop_lag_seconds"
GC_PAUSE = "tickcast_gateway_gc_pause_seconds"


def scrape(gateway: GatewayProcess) -> str:
    """The gateway's ``/metrics`` text; empty if it did not answer in 30 s (its loop stalled that long:
    the phase's numbers then say so)."""
    try:
        return httpx.get(f"{gateway.url}/metrics", timeout=30).text
    except httpx.TimeoutException:
        return ""


def stalls(before: str, after: str) -> dict[str, Any]:
    """The gateway's event-loop stalls between two scrapes: loop lag percentiles (bucket bounds, ms), lags
    over 5 ms, and GC pauses by generation (count, and how many over 5 ms)."""
    lag_before, lag_after = histogram_buckets(before, LOOP_LAG), histogram_buckets(after, LOOP_LAG)
    found: dict[str, Any] = {
        "loop_lag_p50_ms_bucket_upper": bucket_quantile(lag_before, lag_after, 0.5),
        "loop_lag_p99_ms_bucket_upper": bucket_quantile(lag_before, lag_after, 0.99),
        "loop_lags_over_5ms": observed(lag_before, lag_after, 0.005),
    }
    for generation in ("0", "1", "2"):
        labels = f'generation="{generation}",'
        pause_before, pause_after = (
            histogram_buckets(before, GC_PAUSE, labels),
            histogram_buckets(after, GC_PAUSE, labels),
        )
        if pause_after:
            found[f"gc{generation}_pauses"] = observed(pause_before, pause_after)
            found[f"gc{generation}_pauses_over_5ms"] = observed(pause_before, pause_after, 0.005)
    return found


def measure_broker(
    broker_pid: int, gateway: GatewayProcess, pipeline: Pipeline, args: argparse.Namespace, names: list[str]
) -> dict[str, Any]:
    """What the broker does over one window each: pipeline and gateway alone, N SSE clients through the
    gateway, the gateway's one consumer on its own, and N clients each with a consumer of its own.

    Per window: the broker's CPU seconds (distorted by the machine's load), and from the Kafka loads
    librdkafka's own counts of requests and bytes, which the load does not distort. (The kernel's per-process
    I/O counts do not help: Tansu's socket sends and receives are not among them, they read 0.) Each load
    runs :data:`SETTLE_S` longer on both sides of the window, so connecting is left out.
    No load runs niced: at nice 19 on a busy machine a hundred consumers got almost no CPU (127 events
    between them in 20 s), which made the comparison meaningless; the counts do not need it.
    """
    clients, seconds = args.side_clients, args.seconds
    rows: dict[str, Any] = {"clients": clients, "seconds": seconds}

    def window() -> dict[str, Any]:
        cpu = CpuMeter(broker_pid).start()
        hold(seconds)
        return {"broker_cpu_s": cpu.stop(), "load": load_average()}

    rows["pipeline_and_gateway"] = window()
    span = str(seconds + 2 * SETTLE_S)
    load = start_load("tickcast.testing.sse_load", gateway.url, str(clients), span, ",".join(names))
    hold(SETTLE_S)
    rows["via_gateway"] = {**window(), "clients_result": load_result(load, seconds + 120)}
    env = pipeline.env()
    for name, count in (("gateway_consumer_alone", 1), ("own_kafka_consumers", clients)):
        processes = f"--processes={min(count, args.load_processes)}"
        load = start_load("tickcast.testing.kafka_load", str(count), span, ",".join(names), processes, env=env)
        hold(SETTLE_S)
        rows[name] = {**window(), "clients_result": load_result(load, seconds + 300)}
    return rows


def settings_of(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments as environment variables of a gateway.

    >>> settings_of(["TICKCAST_GATEWAY_SCHED_SLICE_US=300"])
    {'TICKCAST_GATEWAY_SCHED_SLICE_US': '300'}
    """
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("TICKCAST_"):
            raise SystemExit(f"expected TICKCAST_...=VALUE, got {pair!r}")
        found[key] = value
    return found


def measuring_order(round_: int, with_baseline: bool) -> tuple[str, ...]:
    """Which gateway round ``round_`` (from 0) measures first: the baseline in rounds 1, 3, …, the new one in 2, 4, …

    The pipeline slows down during a run (the embedded broker's fetches cost more with every stored batch), so
    the side always measured second would always look worse; alternating cancels that over pairs of rounds.

    >>> [measuring_order(r, True) for r in range(3)], measuring_order(0, False)
    ([('baseline', 'new'), ('new', 'baseline'), ('baseline', 'new')], ('new',))
    """
    if not with_baseline:
        return ("new",)
    return ("baseline", "new") if round_ % 2 == 0 else ("new", "baseline")


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
    args = parser.parse_args(argv)
    requests = parse_requests(args.cpu_requests)
    groups = CpuGroups(tag=str(os.getpid()))
    if requests:
        groups.check()
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
            gateway = GatewayProcess({**pipeline.env(), **settings_of(args.gateway_env)}, log_dir / "gateway.log")
            gateway.start()
            if args.baseline_src:
                env = {**pipeline.env(), "PYTHONPATH": args.baseline_src, **settings_of(args.baseline_env)}
                baseline = GatewayProcess(env, log_dir / "gateway-baseline.log").start()
            pids = {
                "gateway": [gateway.process.pid] if gateway.process else [],
                "baseline": [baseline.process.pid] if baseline is not None and baseline.process else [],
                "broker": [broker.pid] if broker.pid is not None else [],
                "workers": [worker.process.pid for worker in pipeline.workers],
            }
            for role, millicpu in requests.items():
                if role == "workers":  # a pod each, so a group each: their weights add up, as on a node
                    for number, pid in enumerate(pids[role], start=1):
                        groups.place(f"worker{number}", millicpu, [pid])
                else:
                    groups.place(role, millicpu, pids[role])
            results["cpu_requests"] = groups.placed or "none: every process in the root cgroup"
            feed.start()
            known = lambda: len(httpx.get(f"{gateway.url}/v1/symbols", timeout=5).json()["symbols"])  # noqa: E731
            wait_for(lambda: known() == args.symbols, 60, "every symbol at the gateway", diagnostics=gateway.log_tail)
            # With a baseline: both gateways in the same pipeline, measured at the same time (--ab-together) or
            # alternately; the shared machine's load changes by the minute, so one after the other is not an A/B.
            rounds = args.ab_rounds if baseline is not None else 1
            for phase, measure in (("get", measure_get_of), ("sse", measure_sse)):
                if phase not in phases:
                    continue
                for round_ in range(rounds):
                    suffix = f"_round{round_ + 1}" if rounds > 1 else ""
                    sides = {"new": (f"{phase}{suffix}", gateway)}
                    if baseline is not None:
                        sides["baseline"] = (f"{phase}_baseline{suffix}", baseline)
                    jobs = {
                        sides[side][0]: (sides[side][1], log_dir / f"{side}{suffix}")
                        for side in measuring_order(round_, baseline is not None)
                    }
                    with ThreadPoolExecutor(len(jobs) if args.ab_together else 1) as pool:
                        running = {key: pool.submit(measure, g, args, names, where) for key, (g, where) in jobs.items()}
                        results.update({key: future.result() for key, future in running.items()})
            if "broker" in phases and broker.pid is not None:
                results["broker_cpu"] = measure_broker(broker.pid, gateway, pipeline, args, names)
            results["pipeline"] = httpx.get(f"{gateway.url}/v1/pipeline", timeout=5).json()
        finally:
            feed.stop()
            for started in (gateway, baseline):
                if started is not None:
                    started.stop()
            pipeline.stop()
            groups.close()
    results["machine"]["load_at_end"] = load_average()
    results["logs"] = str(log_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
