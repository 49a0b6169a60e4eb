"""The measurements of ``python -m bench.gateway``'s get and sse phases, each on a stack it is handed.

- :func:`measure_get`: GET latest at ``--get-rate`` requests/s from ``wrk``: latency percentiles and the
  gateway's CPU time per request (less what it spends reading the stream in an idle window as long);
- :func:`measure_sse_1` and :func:`measure_sse_many`: prediction made to event received, for one client
  and for ``--clients`` clients, with memory per client, the gateway's CPU and its own fan-out histogram.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import psutil

from bench.core import hold
from bench.gateway_broker import SETTLE_S
from bench.gateway_load import (
    CpuMeter,
    bucket_quantile,
    histogram_buckets,
    load_average,
    load_result,
    start_load,
    thread_schedstats,
    wrk_get,
)
from bench.gateway_metrics import FANOUT, busy_threads, scrape, stalls
from bench.gateway_plan import lead_s
from bench.gateway_stack import Stack
from bench.pyspy import PySpy, summarise
from tickcast.testing.gateway import GatewayProcess


def measure_get(stack: Stack, gateway: GatewayProcess, args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """wrk on ``/v1/predictions/{first symbol}`` over the window, after an idle lead-in that measures the
    gateway's CPU for reading the stream alone (subtracted from the CPU per request)."""
    if gateway.process is None:
        raise RuntimeError("the gateway is not running")
    url = f"{gateway.url}/v1/predictions/{names[0]}"
    meter = CpuMeter(gateway.process.pid)
    idle_window = lead_s("get", args.seconds, args.warmup, SETTLE_S)
    stack.lead_in(idle_window)
    meter.start()
    hold(idle_window)
    reading_cpu_per_s = meter.stop() / idle_window
    spy = PySpy(stack.log_dir / "gateway-get.raw") if args.profile else None
    if spy is not None:
        spy.attach(gateway.process.pid)
    load_before = load_average()
    metrics_before = scrape(gateway)
    stack.open_window()
    meter.start()
    threads_before = thread_schedstats(gateway.process.pid)
    result = wrk_get(url, args.get_rate, args.seconds, tuple(args.get_header))
    result["gateway_threads"] = busy_threads(threads_before, thread_schedstats(gateway.process.pid))
    cpu_s = meter.stop()
    stack.close_window()
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


def measure_sse_1(stack: Stack, gateway: GatewayProcess, args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """One SSE client, on the same timeline as the many clients: started ``--warmup`` s before the window.

    By default (``--one-client every``) it subscribes to every symbol: it then sees each prediction the many
    clients see (they share the symbols round robin), once instead of ``clients / symbols`` times, so its p99 is
    over the same predictions' delays, ~10,000 in a 20 s window at 500/s, where one symbol's (``first``) rests
    on ~200 and a single partition.
    """
    stack.lead_in(lead_s("sse_1", args.seconds, args.warmup, SETTLE_S))
    load = start_load(
        "tickcast.testing.sse_load",
        gateway.url,
        "1",
        str(args.seconds + args.warmup),
        ",".join(names),
        f"--warmup={args.warmup}",
        f"--reader={args.sse_reader}",
        *(["--every-symbol"] if args.one_client == "every" else []),
    )
    hold(args.warmup)
    stack.open_window()
    hold(args.seconds)
    stack.close_window()
    return {"sse_1_client": load_result(load, 120), "load_before": load_average()}


def measure_sse_many(
    stack: Stack, gateway: GatewayProcess, args: argparse.Namespace, names: list[str]
) -> dict[str, Any]:
    """``--clients`` SSE clients: the delays after ``--warmup`` s (all connect meanwhile, a burst of the
    gateway's CPU), the gateway's CPU per event and its own fan-out delay over the window, memory per client."""
    if gateway.process is None:
        raise RuntimeError("the gateway is not running")
    results: dict[str, Any] = {"load_before": load_average()}
    process = psutil.Process(gateway.process.pid)
    stack.lead_in(lead_s("sse_many", args.seconds, args.warmup, SETTLE_S))
    rss_before = process.memory_info().rss
    load = start_load(
        "tickcast.testing.sse_load",
        gateway.url,
        str(args.clients),
        str(args.seconds + args.warmup),
        ",".join(names),
        f"--processes={args.load_processes}",
        f"--warmup={args.warmup}",
        f"--reader={args.sse_reader}",
    )
    hold(args.warmup)  # every client connected and streaming: the window starts (as the load's own does)
    stack.open_window()
    window_end = time.monotonic() + args.seconds
    meter = CpuMeter(gateway.process.pid).start()
    threads_before = thread_schedstats(gateway.process.pid)
    metrics_before = scrape(gateway)
    buckets_before = histogram_buckets(metrics_before, FANOUT)
    spies = (
        {"gateway": PySpy(stack.log_dir / "gateway-sse.raw"), "load": PySpy(stack.log_dir / "load-sse.raw")}
        if args.profile
        else {}
    )
    if spies:
        spies["gateway"].attach(gateway.process.pid)
        # One of the load's processes (each runs the same code); the load itself if it did not fork.
        children = psutil.Process(load.pid).children()
        spies["load"].attach(children[0].pid if children else load.pid)
    hold(args.seconds / 2)
    rss_with = process.memory_info().rss
    clients_seen = gateway.clients()
    hold(max(0.0, window_end - time.monotonic()))
    results["gateway_threads"] = busy_threads(threads_before, thread_schedstats(gateway.process.pid))
    stack.close_window()
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
