"""What a tick costs right after the handler was idle, against ticks handled back to back (issue 18).

``python -m bench.cold_start`` runs :meth:`TickHandler.handle` in this process, without a broker, in the
configuration issue 18 names (``linear``, horizon ``1t``, no interval, no challenger, drift off). After each
pause it times the first, second and third tick (CPU time of this thread), and then ticks with no pause
between them. The pauses are what a worker's loop thread does between fetches: sleeping (other processes
run on its core), spinning (it keeps the core), or touching 8 MB (as the broker or another process would).

Why: at 500 ticks/s a worker wakes for a fetch of a few ticks every few milliseconds, and its per-fetch CPU
is several times what a backlog drain measures per tick. Measured on the shared 2-core machine (2026-12-02,
load ~5; µs, p50): first tick after a 4 ms sleep 401, the second 113; after spinning 4 ms 277 / 101; after
touching 8 MB 432 / 107; after ``sleep(0)`` 103 / 81; back to back 54. The handler's code and data are evicted
from the caches while it waits, and reloading them costs more than the tick's own work.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

from bench.handler_probe import _records

#: CPython's per-thread CPU clock: what the handling thread itself ran, not what it waited for.
CPU = time.thread_time


def spin(seconds: float) -> None:
    """Keep the core busy for ``seconds`` without touching much memory."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def touch(megabytes: int) -> None:
    """Write one byte per cache line of a fresh ``megabytes`` buffer, as another process's work would."""
    buffer = bytearray(megabytes << 20)
    for offset in range(0, len(buffer), 64):
        buffer[offset] = 1


PAUSES: dict[str, Callable[[], None]] = {
    "sleep 4 ms": lambda: time.sleep(0.004),
    "sleep 0.5 ms": lambda: time.sleep(0.0005),
    "sleep 0": lambda: time.sleep(0),
    "spin 4 ms": lambda: spin(0.004),
    "touch 8 MB": lambda: touch(8),
}


def p50_us(values: list[float]) -> float:
    """Median in µs.

    >>> p50_us([0.000001, 0.000003, 0.000002])
    2.0
    """
    return round(statistics.median(values) * 1e6, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=800, help="pauses per kind (800)")
    parser.add_argument("--symbols", type=int, default=50)
    args = parser.parse_args(argv)

    from tickcast.predictor.runtime import TickHandler
    from tickcast.predictor.settings import PredictorSettings

    settings = PredictorSettings(
        bootstrap_servers="127.0.0.1:1", worker_id="cold", horizons="1t", interval_coverage=0.0,
        challengers="", drift_detector="off", model="linear",
    )  # fmt: skip
    handler = TickHandler(settings)
    warmup = 10_000
    needed = warmup + args.rounds * (3 * len(PAUSES) + 1)
    _, records = _records(needed, args.symbols)
    for key, value, lineage in records[:warmup]:
        handler.handle(key, value, lineage)
    gc.collect()
    gc.freeze()  # as a worker does after start-up
    ticks = iter(records[warmup:])
    for name, pause in PAUSES.items():
        first: list[float] = []
        second: list[float] = []
        third: list[float] = []
        for _ in range(args.rounds):
            pause()
            for times in (first, second, third):
                started = CPU()
                handler.handle(*next(ticks))
                times.append(CPU() - started)
        by_position = "  ".join(f"tick {n} {p50_us(times):6.1f}" for n, times in enumerate((first, second, third), 1))
        print(f"after {name:13s} {by_position} µs")
    back_to_back: list[float] = []
    for _ in range(args.rounds):
        started = CPU()
        handler.handle(*next(ticks))
        back_to_back.append(CPU() - started)
    print(f"back to back        {p50_us(back_to_back):6.1f} µs per tick (p50 of {args.rounds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
