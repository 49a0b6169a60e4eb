"""A low-noise probe of the handler's CPU per tick, and an A/B of two versions of the code (not in ``make bench``).

``python -m bench.handler_probe`` runs :meth:`TickHandler.handle` over synthetic ticks in child processes and
prints CPU time per tick (``time.process_time``: another job on the core does not count, only cache and
frequency effects do). With ``--base REV`` the children alternate between the working tree and ``REV``
(exported with ``git archive``), round after round, so a shared machine's load hits both alike; the best
round of each is kept, the quietest sample of each version's cost.

The configuration is the one issue 18's target names: the default model, one horizon ``1t``, no interval, no
challengers; the drift detector off unless ``--drift NAME`` (default page-hinkley) turns it on.

Each child first handles ``--warmup`` ticks (every symbol known, models past their warm-up), then times the
rest; ``--forecaster`` times :meth:`Forecaster.process` alone instead (no decode, validation or encode).
"""

from __future__ import annotations

import argparse
import compileall
import gc
import os
import subprocess  # nosec B404 # the probe runs this interpreter on its own module
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CHILD_FLAG = "--child"


def _records(ticks: int, symbols: int) -> tuple[list[Any], list[tuple[bytes, bytes, Any]]]:
    from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
    from tickcast.common.contracts.base import TICK_SCHEMA_FILE
    from tickcast.common.records import Lineage
    from tickcast.producer.synthetic import SyntheticFeed, symbol_names

    clock = iter(range(time.time_ns() // 1_000_000 - ticks, 2**62))
    feed = SyntheticFeed(symbol_names(symbols), seed=5, clock_ms=lambda: next(clock))
    codec = AvroCodec(open_schema_store(None), "ticks-value", load_schema(TICK_SCHEMA_FILE))
    decoded = feed.take(ticks)
    encoded = [
        (t.symbol.encode(), codec.encode(t.to_avro()), Lineage("ticks", i % 8, i, t.event_time))
        for i, t in enumerate(decoded)
    ]
    return decoded, encoded


def child(args: argparse.Namespace) -> None:
    """Time one version (whichever ``tickcast`` this interpreter imports) and print µs per tick."""
    from tickcast.predictor.runtime import TickHandler
    from tickcast.predictor.settings import PredictorSettings

    settings = PredictorSettings(
        bootstrap_servers="127.0.0.1:1", worker_id="probe", horizons="1t", interval_coverage=0.0,
        challengers="", drift_detector=args.drift, model=args.model,
    )  # fmt: skip
    handler = TickHandler(settings)
    ticks, records = _records(args.warmup + args.ticks, args.symbols)
    handle, process = handler.handle, handler.forecaster.process
    for key, value, lineage in records[: args.warmup]:
        handle(key, value, lineage)
    gc.collect()
    gc.freeze()  # as a worker does after start-up (tickcast.predictor.gc_tuning)
    timed = records[args.warmup :][: args.loop]
    started = time.process_time()
    if args.forecaster:
        for tick, (_, _, lineage) in zip(ticks[args.warmup :], timed, strict=False):
            process(tick, lineage, 0)
    else:
        for key, value, lineage in timed:
            handle(key, value, lineage)
    elapsed = time.process_time() - started
    print(f"{elapsed / max(len(timed), 1) * 1e6:.3f}")


def export(rev: str) -> Path:
    """``rev``'s ``services`` and ``schemas``, unpacked in a temporary folder (kept: children import from it)."""
    archive = subprocess.run(  # nosec B603 B607 # git with fixed arguments and a revision the user named
        ["git", "archive", rev, "services", "schemas"], cwd=REPO_ROOT, check=True, capture_output=True
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix=f"probe-{rev.replace('/', '_')}-"))
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    # Compiled now, as the working tree's modules already are: otherwise the first child compiles them all and
    # --instructions, which subtracts a child that loads what the first wrote, counts the compiling as ticks'.
    compileall.compile_dir(folder / "services", quiet=1)
    return folder / "services"


def run_child(services: Path, argv: list[str], valgrind: bool = False) -> float:
    """µs of CPU per tick; with ``valgrind``, instructions per tick (counted by cachegrind) instead."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(services), str(REPO_ROOT))), "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-m", "bench.handler_probe", CHILD_FLAG, *argv]
    if not valgrind:
        out = subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True).stdout  # nosec B603 # this interpreter on this module
        return float(out.strip().splitlines()[-1])
    ticks = int(next(a for a in argv if a.startswith("--ticks=")).split("=")[1])
    counts = []
    for loop in (ticks, 0):  # the same run without the timed loop: the difference is the loop's instructions
        grind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
        done = subprocess.run(  # nosec B603 # valgrind on this interpreter and module
            [*grind, *command, f"--loop={loop}"], cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True
        )
        refs = next(line for line in done.stderr.splitlines() if "I   refs:" in line or "I refs:" in line)
        counts.append(int(refs.split(":")[1].replace(",", "").strip()))
    return (counts[0] - counts[1]) / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", help="a git revision to compare the working tree with (A = REV, B = the tree)")
    parser.add_argument("--tree", help="measure this git revision instead of the working tree (B = REV)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ticks", type=int, default=30_000, help="timed ticks per child")
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--model", default="linear")
    parser.add_argument("--drift", default="off", help="drift detector: off (default), page-hinkley or adwin")
    parser.add_argument("--forecaster", action="store_true", help="time Forecaster.process alone")
    parser.add_argument(
        "--instructions", action="store_true",
        help="count instructions per tick under valgrind (cachegrind) instead of CPU time: slow, but the load "
        "of a shared machine does not change it; one round is enough",
    )  # fmt: skip
    parser.add_argument("--loop", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.loop = args.ticks if args.loop is None else args.loop
        child(args)
        return
    argv = [
        f"--ticks={args.ticks}", f"--warmup={args.warmup}", f"--symbols={args.symbols}", f"--model={args.model}",
        f"--drift={args.drift}", *(["--forecaster"] if args.forecaster else []),
    ]  # fmt: skip
    versions = {args.tree: export(args.tree)} if args.tree else {"tree": REPO_ROOT / "services"}
    if args.base:
        versions = {args.base: export(args.base), **versions}
    samples: dict[str, list[float]] = {name: [] for name in versions}
    for round_ in range(args.rounds):
        for name, services in versions.items():
            samples[name].append(run_child(services, argv, args.instructions))
        print(f"round {round_ + 1}: " + ", ".join(f"{n} {s[-1]:.2f}" for n, s in samples.items()), flush=True)
    what = "forecaster" if args.forecaster else "handler"
    unit = "instructions/tick" if args.instructions else "µs/tick"
    for name, values in samples.items():
        print(f"{name}: {what} best {min(values):.2f} {unit}, median {sorted(values)[len(values) // 2]:.2f}")
    if args.base:
        base, tree = (min(v) for v in samples.values())
        print(f"{args.tree or 'tree'} - {args.base}: {tree - base:+.2f} {unit} ({tree / base:.3f}x)")


if __name__ == "__main__":
    main()
