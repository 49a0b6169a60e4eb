"""``python -m bench.gateway``: one gateway in front of a pipeline fed ``--rate`` ticks/s (default 500).

Measures, each load from a process of its own:
- GET latest: latency percentiles at ``--get-rate`` requests/s (Debian's ``wrk``; each connection waits
  10 ms between requests, so ``get_rate / 100`` connections make the rate);
- SSE fan-out: prediction made (``predicted_at``, the worker's clock) to event received, for 1 client and
  for ``--clients`` clients (each subscribed to one symbol, round robin);
- memory per client: the gateway's resident memory with the clients connected minus before, per client.

Writes ``bench/results/gateway.json`` and prints it. Not part of ``make bench``'s default scenarios.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.core import hold
from bench.feeds import PacedFeed
from tickcast.broker.embedded import EmbeddedBroker
from tickcast.producer.synthetic import symbol_names
from tickcast.testing.gateway import GatewayProcess
from tickcast.testing.pipeline import Pipeline, new_unique, wait_for_assignment
from tickcast.testing.waiting import wait_for

RESULTS = Path(__file__).parent / "results" / "gateway.json"
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_get(url: str, rate: int, seconds: float) -> dict[str, Any]:
    """GET ``url`` at about ``rate``/s with wrk; its latency percentiles (ms) and the rate it achieved."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"skipped": "wrk is not installed (Debian package wrk)"}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("function delay() return 10 end\n")  # ms between one connection's requests
    connections = max(1, rate // 100)
    done = subprocess.run(  # nosec B603 # argv built here: this interpreter or wrk with fixed options
        [wrk, "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    return {"connections": connections, **parse_wrk(done.stdout)}


def parse_wrk(text: str) -> dict[str, float | None]:
    """The rate and latency percentiles (ms) of wrk's ``--latency`` report.

    >>> parse_wrk("  Latency Distribution\\n     50%  812.00us\\n     99%    1.25ms\\nRequests/sec:   1998.70\\n")
    {'requests_per_s': 1998.7, 'p50_ms': 0.812, 'p99_ms': 1.25}
    """
    achieved = _RATE.search(text)
    percentiles = {f"p{q}_ms": round(float(v) * _UNIT_MS[unit], 3) for q, v, unit in _PERCENTILE.findall(text)}
    return {"requests_per_s": float(achieved[1]) if achieved else None, **percentiles}


def sse_clients(url: str, clients: int, seconds: float, symbols: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "tickcast.testing.sse_load", url, str(clients), str(seconds), ",".join(symbols)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=True)  # nosec B603 # argv built here: wrk with fixed options
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="ticks per second through the pipeline")
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--get-rate", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measurement")
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="tickcast-bench-gateway-"))
    names = symbol_names(args.symbols)
    results: dict[str, Any] = {
        "machine": {"cpus": psutil.cpu_count(), "platform": platform.platform(), "load_at_start": psutil.getloadavg()},
        "inputs": vars(args),
    }
    with EmbeddedBroker(log_file=log_dir / "broker.log") as broker:
        pipeline = Pipeline(broker.bootstrap_servers, new_unique(), log_dir)
        pipeline.create_topics()
        gateway: GatewayProcess | None = None
        feed = PacedFeed(pipeline, args.rate, args.symbols)
        try:
            wait_for_assignment(pipeline, pipeline.start_workers(args.workers), timeout_s=90)
            gateway = GatewayProcess(pipeline.env(), log_dir / "gateway.log").start()
            feed.start()
            known = lambda: len(httpx.get(f"{gateway.url}/v1/symbols", timeout=5).json()["symbols"])  # noqa: E731
            wait_for(lambda: known() == args.symbols, 60, "every symbol at the gateway", diagnostics=gateway.log_tail)
            assert gateway.process is not None  # nosec B101 # narrows the type: started above
            process = psutil.Process(gateway.process.pid)
            results["get_latest"] = wrk_get(f"{gateway.url}/v1/predictions/{names[0]}", args.get_rate, args.seconds)
            results["sse_1_client"] = sse_clients(gateway.url, 1, args.seconds, names)
            rss_before = process.memory_info().rss
            load = subprocess.Popen(  # nosec B603 # argv built here: this interpreter running the bench's SSE load
                [sys.executable, "-m", "tickcast.testing.sse_load", gateway.url, str(args.clients), str(args.seconds),
                 ",".join(names)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            hold(args.seconds / 2)  # mid-window: every client connected and streaming
            rss_with = process.memory_info().rss
            clients_seen = gateway.clients()
            out, _ = load.communicate(timeout=args.seconds + 120)
            results[f"sse_{args.clients}_clients"] = json.loads(out.strip().splitlines()[-1])
            results["memory"] = {
                "gateway_rss_mb_before": round(rss_before / 2**20, 1),
                "gateway_rss_mb_with_clients": round(rss_with / 2**20, 1),
                "kb_per_client": round((rss_with - rss_before) / args.clients / 1024, 1),
                "clients_by_gateway_metric_mid_run": clients_seen,
            }
            results["pipeline"] = httpx.get(f"{gateway.url}/v1/pipeline", timeout=5).json()
        finally:
            feed.stop()
            if gateway is not None:
                gateway.stop()
            pipeline.stop()
    results["machine"]["load_at_end"] = psutil.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
