"""Where a worker's memory grows: a steady feed, repeated rebalances, or both, each measured on its own.

``python -m bench.memory_growth --feed-rate 500 --faults kill --minutes 6`` starts its own broker and two
workers (snapshots on, the soak's cadence). Worker 1 is the witness, followed for the whole run; worker 2
is the one faults hit:

* ``--faults none``: no fault at all, so growth comes from the feed alone;
* ``--faults kill``: every ``--fault-every-s`` worker 2 is killed (-9) and restarted at once, as in the
  soak: the witness takes its partitions over, restores them, then gives them back (two rebalances);
* ``--faults leave``: worker 2 is stopped gracefully and started again (two clean rebalances);
* ``--faults stop``: the witness is frozen (SIGSTOP) past its session timeout, then resumed (a zombie).

``--feed-rate 0`` runs without a feed, so growth comes from the rebalances alone. ``--env NAME=VALUE``
(repeatable) passes extra environment to the workers, e.g. ``MALLOC_ARENA_MAX=2``.

Reported (``bench/results/memory_growth-<label>.json``): the witness's RSS every second, each fault's time,
the RSS slope per minute after warm-up, and the RSS change per fault (the witness's RSS just before each
fault, so a fault's own transient is not counted).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tickcast.broker.embedded import EmbeddedBroker
from tickcast.common.logging import configure_logging
from tickcast.ops.workers import WorkerProcess
from tickcast.testing.data import REPO_ROOT
from tickcast.testing.faults import kill_hard, paused, resident_bytes
from tickcast.testing.load import BackgroundFeed
from tickcast.testing.pipeline import SESSION_TIMEOUT_S, Pipeline, new_unique, wait_for_assignment

RESULTS = REPO_ROOT / "bench" / "results"
FAULTS = ("none", "kill", "leave", "stop")


@dataclass
class GrowthOptions:
    minutes: float = 6.0
    feed_rate: float = 500.0
    symbols: int = 50
    faults: str = "kill"
    fault_every_s: float = 20.0
    warm_up_s: float = 60.0
    partitions: int = 8
    env: dict[str, str] = field(default_factory=dict)
    label: str = ""


@dataclass
class GrowthResult:
    options: dict[str, Any]
    samples: list[tuple[float, int]]
    """(seconds since start, witness RSS bytes), once a second."""
    faults: list[float]
    """Seconds since start at which each fault began."""
    rss_warm_mb: float
    rss_end_mb: float
    mb_per_minute: float
    mb_per_fault: float | None

    def summary(self) -> str:
        per_fault = f"{self.mb_per_fault:+.2f} MB/fault" if self.mb_per_fault is not None else "no faults"
        return (
            f"{self.options['label'] or self.options['faults']}: witness RSS {self.rss_warm_mb:.1f} -> "
            f"{self.rss_end_mb:.1f} MB after warm-up, {self.mb_per_minute:+.2f} MB/min, {per_fault} "
            f"({len(self.faults)} faults)"
        )


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two distinct x).

    >>> slope([(0, 1.0), (1, 3.0), (2, 5.0)])
    2.0
    """
    if len({x for x, _ in points}) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return covariance / sum((x - mean_x) ** 2 for x, _ in points)


def rss_before(samples: list[tuple[float, int]], at_s: float) -> int:
    """The last RSS sampled before ``at_s`` (0 if none was).

    >>> rss_before([(0.0, 5), (1.0, 6), (2.0, 9)], 1.5)
    6
    """
    before = [rss for t, rss in samples if t < at_s]
    return before[-1] if before else 0


class Faults:
    """Injects one fault of the chosen kind; worker 2 is the one killed or restarted, the witness the one frozen."""

    def __init__(self, pipeline: Pipeline, witness: WorkerProcess, kind: str) -> None:
        self.pipeline, self.witness, self.kind = pipeline, witness, kind

    def other(self) -> WorkerProcess:
        return next(w for w in self.pipeline.workers if w is not self.witness)

    def strike(self, stop_after_s: float) -> None:
        pool = self.pipeline.pool
        assert pool is not None  # nosec B101 # narrows the type: the pipeline started its pool
        if self.kind == "kill":
            victim = self.other()
            kill_hard(victim.process)
            pool.workers.remove(victim)
            pool.start_one()
        elif self.kind == "leave":
            pool.stop_one(self.other())
            pool.start_one()
        elif self.kind == "stop":
            with paused(self.witness.process.pid):
                time.sleep(stop_after_s)  # the fault itself: the witness stays frozen this long


def run(options: GrowthOptions, bootstrap_servers: str, work_dir: Path) -> GrowthResult:
    unique = new_unique()
    pipeline = Pipeline(
        bootstrap_servers=bootstrap_servers, unique=unique, log_dir=work_dir / f"growth-{unique}",
        partitions=options.partitions, group_prefix="growth", worker_prefix="worker",
        extra_env={"TICKCAST_SNAPSHOT_KEY": f"growth-{unique}", "TICKCAST_LOG_LEVEL": "WARNING", **options.env},
    )  # fmt: skip
    pipeline.create_topics()
    try:
        workers = pipeline.start_workers(2)
        wait_for_assignment(pipeline, workers, timeout_s=120)
        witness = workers[0]
        faults = Faults(pipeline, witness, options.faults)
        feed = (
            BackgroundFeed(pipeline.publisher(), symbols=options.symbols, rate=options.feed_rate)
            if options.feed_rate > 0
            else None
        )
        samples: list[tuple[float, int]] = []
        fault_times: list[float] = []
        t0 = time.monotonic()
        next_fault = t0 + options.fault_every_s
        if feed is not None:
            feed.__enter__()
        try:
            while (elapsed := time.monotonic() - t0) < options.minutes * 60:
                pipeline.check_workers_alive()
                samples.append((round(elapsed, 2), resident_bytes(witness.process.pid)))
                if len(samples) % 60 == 0:
                    print(f"t={elapsed:.0f}s witness_rss={samples[-1][1] / 1e6:.1f} MB faults={len(fault_times)}",
                          flush=True)  # fmt: skip
                if options.faults != "none" and time.monotonic() >= next_fault:
                    fault_times.append(round(time.monotonic() - t0, 2))
                    faults.strike(stop_after_s=SESSION_TIMEOUT_S + 2.0)
                    next_fault = time.monotonic() + options.fault_every_s
                time.sleep(1.0)  # the sampling period
        finally:
            if feed is not None:
                feed.stop()
        warm = [(t, rss) for t, rss in samples if t >= options.warm_up_s]
        per_minute = slope([(t / 60, rss / 1e6) for t, rss in warm])
        warm_faults = [t for t in fault_times if t >= options.warm_up_s]
        per_fault = (
            slope([(i, rss_before(samples, t) / 1e6) for i, t in enumerate(warm_faults)])
            if len(warm_faults) >= 2
            else None
        )
        return GrowthResult(
            options={k: str(v) for k, v in asdict(options).items()},
            samples=samples,
            faults=fault_times,
            rss_warm_mb=round((warm[0][1] if warm else 0) / 1e6, 1),
            rss_end_mb=round((warm[-1][1] if warm else 0) / 1e6, 1),
            mb_per_minute=round(per_minute, 3),
            mb_per_fault=round(per_fault, 3) if per_fault is not None else None,
        )
    finally:
        pipeline.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_growth", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--feed-rate", type=float, default=500.0, help="ticks/s; 0 = no feed")
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--faults", choices=FAULTS, default="kill")
    parser.add_argument("--fault-every-s", type=float, default=20.0)
    parser.add_argument("--warm-up-s", type=float, default=60.0)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra worker environment")
    parser.add_argument("--label", default="", help="names the result file (default: the fault kind)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / ".tickcast" / "memory_growth")
    args = parser.parse_args(argv)
    configure_logging("memory_growth", "WARNING", "console")
    options = GrowthOptions(
        minutes=args.minutes, feed_rate=args.feed_rate, symbols=args.symbols, faults=args.faults,
        fault_every_s=args.fault_every_s, warm_up_s=args.warm_up_s,
        env=dict(item.split("=", 1) for item in args.env), label=args.label,
    )  # fmt: skip
    args.work_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedBroker(log_file=args.work_dir / "broker.log") as broker:
        result = run(options, broker.bootstrap_servers, args.work_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"memory_growth-{options.label or options.faults}.json"
    (args.out / name).write_text(json.dumps(asdict(result), indent=2))
    print(result.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
