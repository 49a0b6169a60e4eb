"""``python -m bench.gateway_auth``: what the bearer-token check, and HTTPS, cost the hot GET.

A gateway process with the hot-GET protocol over an in-memory feed (one symbol, no Kafka: only the HTTP path
is measured), loaded by wrk at a fixed rate over keep-alive connections, with or without a clients file (and
then wrk sends the token). Each round starts a fresh gateway per mode, alternating which mode goes first;
``perf stat`` counts the gateway's CPU time (and instructions, where the machine has the counters) in the
window, divided by wrk's requests.

Modes: ``off``, ``on`` (authentication), ``off-header``; ``tls-`` before one serves HTTPS (a throwaway CA's
certificate, ``--key-type``), and ``-close`` after one sends ``Connection: close``, so every request is a new
connection (and, over TLS, a full handshake; such requests are answered by the ASGI path, not the hot GET).
Run it under the machine's bench lock; the numbers go to ``bench/results/gateway_auth.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.gateway_load import parse_wrk
from tickcast.common.processes import free_port

RESULTS = Path(__file__).parent / "results" / "gateway_auth.json"
#: The hot GET measured: a held symbol's latest prediction.
PATH = "/v1/predictions/SPY"


def serve(port: int, clients_file: str | None, tls_dir: str | None = None) -> None:
    """The child: a gateway over a feed holding one prediction of SPY, until SIGTERM (HTTPS with ``tls_dir``)."""
    import uvicorn

    from tickcast.common.records import Prediction
    from tickcast.gateway.app import create_app
    from tickcast.gateway.cache import Published
    from tickcast.gateway.feed import PredictionFeed
    from tickcast.gateway.hotget import hot_get_protocol
    from tickcast.gateway.settings import GatewaySettings
    from tickcast.gateway.tls import ServerTls, TlsFiles

    settings = GatewaySettings(partitions=1, gateway_clients_file=Path(clients_file) if clients_file else None)
    tls = ServerTls(TlsFiles(Path(tls_dir) / "tls.crt", Path(tls_dir) / "tls.key")) if tls_dir else None
    feed = PredictionFeed(settings)
    feed.reached_end(0, 0)
    now_ms = int(time.time() * 1000)
    made = Prediction(
        "SPY", now_ms, 100.0, 1.5, 100.01, 1, "READY", "linear", "3", 1, "ticks", 0, 1, now_ms, now_ms * 1000, "w"
    )
    feed.ingest([Published.of(0, 1, made, time.monotonic())])
    config = uvicorn.Config(
        create_app(feed, tls=tls),
        port=port,
        log_level="warning",
        access_log=False,
        http=hot_get_protocol(feed),
        **(tls.uvicorn_options() if tls is not None else {}),
    )
    uvicorn.Server(config).run()


def measure(
    mode: str, token: str, clients_file: str, rate: int, seconds: int, baseline_src: str = "", tls_dir: str = ""
) -> dict[str, Any]:
    """One window of one fresh gateway: wrk's rate and latency, the gateway's instructions and CPU per request.

    A mode ``base-<mode>`` runs the gateway from ``baseline_src`` (a ``services`` folder of other code).
    """
    port = free_port()
    argv = [sys.executable, "-m", "bench.gateway_auth", "--serve", str(port)]
    env = None
    auth = mode
    if auth.startswith("base-"):
        env = {**os.environ, "PYTHONPATH": baseline_src}
        auth = auth.removeprefix("base-")
    secure, auth = auth.startswith("tls-"), auth.removeprefix("tls-")
    close, auth = auth.endswith("-close"), auth.removesuffix("-close")
    if auth == "on":
        argv += ["--clients-file", clients_file]
    if secure:
        argv += ["--tls-dir", tls_dir]
    # off-header: no authentication, but wrk sends the header anyway: what parsing it costs, without the check.
    server = subprocess.Popen(argv, env=env)  # nosec B603 # this module, fixed argv
    try:
        url = f"{'https' if secure else 'http'}://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"} if auth in ("on", "off-header") else {}
        if close:
            headers["Connection"] = "close"
        deadline = time.monotonic() + 20
        while True:
            try:
                # wrk does not verify certificates either: the handshake's cost is measured, not the CA's trust.
                if httpx.get(url + PATH, headers=headers, timeout=1, verify=False).status_code == 200:  # nosec B501
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"the {mode} gateway did not come up")
            time.sleep(0.1)  # polling a starting server, not synchronising threads
        perf = subprocess.Popen(  # nosec B603 B607 # perf with fixed options
            ["perf", "stat", "-x,", "-e", "instructions,task-clock", "-p", str(server.pid)],
            stderr=subprocess.PIPE,
            text=True,
        )
        wrk = _wrk(url + PATH, rate, seconds, headers)
        perf.send_signal(signal.SIGINT)
        _, counters = perf.communicate(timeout=10)
    finally:
        server.terminate()
        server.wait(10)
    found = {m[2]: float(m[1]) for m in re.finditer(r"^(?:<[^>]+>|([\d.]+)),[^,]*,([\w-]+)", counters, re.M) if m[1]}
    requests = wrk["requests"] or 1
    return {
        "mode": mode,
        **wrk,
        # None where the machine has no hardware counters (a VM: perf says <not supported>).
        "instructions_per_request": round(found["instructions"] / requests) if "instructions" in found else None,
        "cpu_us_per_request": round(found["task-clock"] * 1000 / requests, 2) if "task-clock" in found else None,
    }


def _certificate(directory: Path, key_type: str) -> str:
    """A throwaway CA's server certificate for 127.0.0.1 (``tls.crt``, ``tls.key``) in ``directory``."""
    import trustme

    directory.mkdir(parents=True)
    issued = trustme.CA(key_type=trustme.KeyType[key_type.upper()]).issue_cert("127.0.0.1")
    (directory / "tls.crt").write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(directory / "tls.key"))
    return str(directory)


def _wrk(url: str, rate: int, seconds: int, headers: dict[str, str]) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian package wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("function delay() return 10 end\n")  # ms between one connection's requests
    connections = max(1, math.ceil(rate * 12 / 1000))  # ~12 ms a cycle per connection (see bench.gateway_load)
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    try:
        text = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout  # nosec B603
    finally:
        os.unlink(script.name)
    found = parse_wrk(text)
    if found["not_ok"]:
        raise RuntimeError(f"{found['not_ok']} answers were not 2xx: the token was refused, or the symbol unknown")
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument(
        "--modes",
        default="off,on",
        help="comma-separated: off, on, off-header (no check, the header still sent); tls-<mode>: over HTTPS; "
        "<mode>-close: a new connection per request",
    )
    parser.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa", help="the TLS modes' server key")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--baseline-src", default="", help="a services/ folder of other code, for base-* modes")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--clients-file", help=argparse.SUPPRESS)
    parser.add_argument("--tls-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.clients_file, args.tls_dir)
        return
    from tickcast.gateway.auth import client_line

    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory() as tmp:
        clients = Path(tmp) / "clients"
        # A file of 100 clients, the bench's one among them.
        lines = [client_line(f"desk-{n}", secrets.token_urlsafe(32)) for n in range(99)]
        clients.write_text("\n".join([*lines, client_line("bench", token)]) + "\n", encoding="utf-8")
        tls_dir = _certificate(Path(tmp) / "tls", args.key_type)
        runs = []
        modes = args.modes.split(",")
        for round_ in range(args.rounds):
            # Each round in another order, so neither mode is always first on a machine that drifts.
            for mode in modes[round_ % len(modes) :] + modes[: round_ % len(modes)]:
                found = measure(mode, token, str(clients), args.rate, args.seconds, args.baseline_src, tls_dir)
                runs.append({"round": round_ + 1, **found})
                print(json.dumps(runs[-1]), flush=True)
    summary: dict[str, dict[str, Any]] = {}
    for mode in args.modes.split(","):
        summary[mode] = {}
        for key in ("instructions_per_request", "cpu_us_per_request", "p50_ms", "p99_ms", "requests_per_s"):
            values = [r[key] for r in runs if r["mode"] == mode and r.get(key) is not None]
            if values:
                summary[mode][key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    found = {"key_type": args.key_type, "rate": args.rate, "runs": runs, "summary": summary}
    args.out.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
