"""Scenario 5, memory: resident memory per symbol of a Forecaster's state, with the default model.

Each size runs in a fresh child process (``python -m bench.memory --child ...``), so one size cannot
reuse memory freed by another. The child imports and warms up everything first, then measures RSS
before and after feeding ``ticks_per_symbol`` ticks to every symbol round-robin, and divides by the
symbol count. It also reports the pickled size of a symbol's state, a proxy for what moving it costs.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import pickle  # nosec B403 # only dumps, to measure state size; never loads
import random
import subprocess
import sys
import time
from typing import Any

from bench.core import BenchError, Context, Row, ScenarioResult, at_most
from bench.sampling import rss_bytes
from tickcast.testing.data import REPO_ROOT

TARGET_KB_PER_SYMBOL = 20.0


def measure_in_child(symbols: int, ticks_per_symbol: int, model: str) -> dict[str, Any]:
    from tickcast.common.records import Lineage, Tick
    from tickcast.predictor.forecaster import Forecaster
    from tickcast.predictor.models import model_spec
    from tickcast.producer.synthetic import symbol_names

    spec = model_spec(model)
    rng = random.Random(11)  # nosec B311 # synthetic prices, reproducible; nothing secret
    start_ms = time.time_ns() // 1_000_000 - symbols * ticks_per_symbol

    def feed(forecaster: Forecaster, names: list[str], rounds: int) -> None:
        prices = [rng.uniform(10, 500) for _ in names]
        offset = 0
        for _ in range(rounds):
            for i, name in enumerate(names):
                prices[i] *= math.exp(rng.gauss(0.0, 5.0) / 1e4)
                offset += 1
                event_ms = start_ms + offset
                forecaster.process(
                    Tick(name, round(prices[i], 4), 100.0, event_ms), Lineage("t", 0, offset, event_ms), event_ms * 1000
                )

    # Warm up: first calls fill River's and the interpreter's caches, which are not per-symbol costs.
    feed(Forecaster(spec, worker="bench"), [f"WARM{i}" for i in range(20)], ticks_per_symbol + 5)
    names = symbol_names(symbols)
    gc.collect()
    before = rss_bytes()
    forecaster = Forecaster(spec, worker="bench")
    started = time.perf_counter()
    feed(forecaster, names, ticks_per_symbol)
    elapsed = time.perf_counter() - started
    gc.collect()
    after = rss_bytes()
    states = list(forecaster.states.values())
    sample = states[: min(len(states), 1000)]
    pickled = [len(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)) for state in sample]
    return {
        "symbols": symbols,
        "ticks_per_symbol": ticks_per_symbol,
        "model": model,
        "rss_before_mb": round(before / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "rss_kb_per_symbol": round((after - before) / symbols / 1024, 2),
        "pickle_bytes_per_symbol": round(sum(pickled) / len(pickled), 1),
        "process_us_per_tick": round(elapsed / (symbols * ticks_per_symbol) * 1e6, 1),
    }


def measure(symbols: int, ticks_per_symbol: int, model: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.memory", "--child", "--symbols", str(symbols)]
    argv += ["--ticks-per-symbol", str(ticks_per_symbol), "--model", model]
    # subprocess.run kills the child if the deadline passes or anything is raised while waiting.
    # This interpreter running the bench's own module (argv is ours), no shell.
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=REPO_ROOT, check=False)  # nosec B603
    if done.returncode != 0:
        raise BenchError(f"memory child for {symbols} symbols failed ({done.returncode}):\n{done.stderr[-3000:]}")
    loaded: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def run(context: Context) -> ScenarioResult:
    options = context.options
    sizes = {str(n): measure(n, options.memory_ticks_per_symbol, options.model) for n in options.memory_symbols}
    rows: list[Row] = []
    for n, result in sizes.items():
        rows.append(
            at_most(f"RSS per symbol at {int(n):,} symbols", result["rss_kb_per_symbol"], "KB", TARGET_KB_PER_SYMBOL)
        )
        rows.append(Row(f"pickled state per symbol at {int(n):,} symbols", result["pickle_bytes_per_symbol"], "bytes"))
    return ScenarioResult(
        name="memory",
        title="Memory: resident memory and pickled state per symbol (in-process Forecaster)",
        inputs={
            "symbols": list(options.memory_symbols),
            "ticks_per_symbol": options.memory_ticks_per_symbol,
            "model": options.model,
            "method": "RSS of a fresh child process before/after feeding, after gc.collect()",
        },
        metrics={"by_symbols": sizes},
        rows=rows,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--symbols", type=int, required=True)
    parser.add_argument("--ticks-per-symbol", type=int, default=20)
    parser.add_argument("--model", default="linear")
    args = parser.parse_args(argv)
    print(json.dumps(measure_in_child(args.symbols, args.ticks_per_symbol, args.model)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
