"""``make soak``: a long run at half of measured capacity while workers are killed (-9) and frozen (SIGSTOP).

``python -m bench.soak --minutes 30`` starts its own broker, two workers (snapshots on, default cadence)
and a steady synthetic feed; every ``--fault-every-s`` seconds (jittered) a random worker is killed with
SIGKILL and restarted at once (as ``tickcast supervise`` would), or frozen for 1 s to past its session timeout.
Worker 1 is never killed, only frozen: it is the witness whose memory is followed for the whole run; its
growth is measured from the end of warm-up (20% of the run, at least 1 and at most 5 minutes) to the end of
the run, both at moments when the workers are caught up (see ``witness_rss``).

Reported (``bench/results/soak.json`` and ``soak.png``): lost ticks (must be 0), duplicates against their
bound, RSS growth of the witness after warm-up (target < 5%), the longest lag and the lag at the end.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.soak_chart import draw
from bench.soak_tap import AnswerTap
from tickcast.broker.embedded import EmbeddedBroker
from tickcast.common.logging import configure_logging
from tickcast.common.settings import CommonSettings
from tickcast.ops.workers import WorkerProcess
from tickcast.predictor.snapshot_keys import new_key
from tickcast.producer.publisher import publish_all
from tickcast.producer.synthetic import SyntheticFeed, symbol_names
from tickcast.testing.data import REPO_ROOT
from tickcast.testing.faults import kill_hard, paused, resident_bytes
from tickcast.testing.ledger import read_ledger
from tickcast.testing.load import BackgroundFeed, ms_clock
from tickcast.testing.pipeline import SESSION_TIMEOUT_S, Pipeline, new_unique, wait_for_assignment
from tickcast.testing.waiting import wait_for

RESULTS = REPO_ROOT / "bench" / "results"
#: Checkpoint cadence of the soak's workers (the defaults, stated so the duplicate bound can use them).
SNAPSHOT_EVERY_TICKS = 1000
SNAPSHOT_EVERY_S = 5.0
#: After a member is gone: session expiry, the survivor's heartbeat, a rejoin and a restore (see test_failover).
TAKEOVER_S = SESSION_TIMEOUT_S + min(3.0, SESSION_TIMEOUT_S / 3) + 8.0
#: Lag may grow while a fault stalls partitions: at most two overlapping take-overs' worth of the feed.
LAG_BOUND_S = 2 * TAKEOVER_S
#: Mean time between faults. A fault stalls some partitions for up to a take-over; at half of capacity the
#: backlog it leaves takes as long again to drain. Faults closer than that (2 x TAKEOVER_S) pile backlog on
#: backlog, so the lag grows for as long as the run lasts and no lag bound can hold: a 2-minute run with a
#: fault every ~15 s reached 54,763 ticks (21.6 s) of lag and was still climbing. Jitter is +-30%.
FAULT_EVERY_S = 3 * TAKEOVER_S
#: The witness's memory is compared at moments when the lag is under this much feed: a backlog fills fetch
#: and producer buffers, which hold memory for as long as it lasts without being a leak.
CAUGHT_UP_LAG_S = 2.0
#: After the feed stops and every tick is answered, the witness is sampled this many more seconds, caught up:
#: the window compared at the end starts after one period of the workers' memory release (15 s by default,
#: TICKCAST_MEMORY_RELEASE_EVERY_S), so the drain's own peak (seen: 192 MB, then 186 MB at the next release) is
#: given back first.
RSS_WINDOW = 10
TAIL_SAMPLES = 15 + RSS_WINDOW
#: Up to this many ticks, the run ends by reading every topic to its end (ledger); beyond, the tap's count.
LEDGER_LIMIT = 1_000_000
#: After the feed stops, how long the workers get to answer the rest before the run is called unfinished.
DRAIN_AFTER_FEED_S = 300.0


@dataclass
class SoakOptions:
    minutes: float = 30.0
    rate: float | None = None
    """Ticks per second; None = half of the capacity measured at the start."""
    max_rate: float | None = None
    """Cap on the measured rate (CI keeps the final read cheap)."""
    workers: int = 2
    partitions: int = 8
    symbols: int = 50
    fault_every_s: float = FAULT_EVERY_S
    capacity_ticks: int = 30_000
    warm_up_s: float | None = None
    """Seconds before the witness's memory is first compared; None = 20% of the run, at least 1 and at most 5
    minutes."""
    seed: int = 7
    out_dir: Path = RESULTS
    linger_ms: int | None = None
    """Batching delay of the feed and of the workers' predictions (TICKCAST_LINGER_MS); None = their defaults.
    An embedded-broker workaround: its fetches get slower with every batch it stores, and at a low rate
    nearly every record is a batch of its own, so a long run at 150/s stalled after ~180k ticks (see README)."""


@dataclass
class Fault:
    at_s: float
    kind: str  # "kill" or "stop"
    worker: str
    seconds: float = 0.0


@dataclass
class SoakResult:
    options: dict[str, Any]
    capacity_per_s: float | None
    rate_per_s: float
    sent: int
    lost: int
    duplicates: int
    duplicate_bound: int
    faults: list[Fault]
    witness_rss_warm_mb: float | None
    witness_rss_end_mb: float | None
    witness_rss_growth: float | None
    """None when too few caught-up samples followed warm-up to compare (the summary says so)."""
    max_lag_ticks: int
    max_lag_s: float
    lag_bound_s: float
    end_lag_ticks: int
    drain_after_feed_s: float
    learning_breaks: int | None
    samples: list[dict[str, Any]] = field(default_factory=list)
    unfinished: str | None = None
    """Why the run could not be checked to the end (the workers did not catch up); None when it was."""

    def summary(self) -> str:
        verdict = f"UNFINISHED ({self.unfinished}) " if self.unfinished else ""
        growth = "unmeasured" if self.witness_rss_growth is None else f"{self.witness_rss_growth:+.1%}"
        return verdict + (
            f"sent={self.sent} lost={self.lost} duplicates={self.duplicates} (bound {self.duplicate_bound}) "
            f"faults={len(self.faults)} ({sum(f.kind == 'kill' for f in self.faults)} kill -9) "
            f"rss_growth={growth} (target < 5%) max_lag={self.max_lag_s:.1f}s "
            f"(bound {LAG_BOUND_S:.0f}s) end_lag={self.end_lag_ticks} learning_breaks={self.learning_breaks}"
        )


def duplicate_bound(faults: list[Fault], partitions: int) -> int:
    """At most a checkpoint window per partition may be replayed after each fault that moves partitions.

    A window is up to ``SNAPSHOT_EVERY_TICKS`` processed since the last checkpoint plus as many processed
    while that checkpoint was being written, so ``2 x SNAPSHOT_EVERY_TICKS`` per partition and fault. A kill
    moves partitions; a freeze does when it reaches the session timeout (half of it counted, to be safe).

    >>> duplicate_bound([Fault(0, "kill", "w-2"), Fault(9, "stop", "w-1", 1.0)], partitions=8)
    16000
    """
    moving = sum(1 for f in faults if f.kind == "kill" or f.seconds >= SESSION_TIMEOUT_S / 2)
    return moving * partitions * 2 * SNAPSHOT_EVERY_TICKS


class Chaos(threading.Thread):
    """Every ``every_s`` (jittered by +-30%), kills a random non-witness worker or freezes a random one."""

    def __init__(self, pipeline: Pipeline, witness: WorkerProcess, every_s: float, seed: int, t0: float) -> None:
        super().__init__(name="chaos", daemon=True)
        self.pipeline, self.witness, self.every_s, self.t0 = pipeline, witness, every_s, t0
        self.random = random.Random(seed)  # nosec B311 # which fault strikes when: reproducible, not secret
        self.faults: list[Fault] = []
        self.killed: queue.SimpleQueue[str] = queue.SimpleQueue()
        """Workers killed and not replaced yet: the main thread starts their replacements (see restart)."""
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.wait(self.every_s * self.random.uniform(0.7, 1.3)):
                self.strike()
        except BaseException as exc:  # reported on the main thread
            self.error = exc

    def restart(self) -> None:
        """Replace killed workers, as the supervisor would; on the main thread, because a child started from
        this thread would get SIGTERM when the thread ends (PR_SET_PDEATHSIG follows the parent thread)."""
        assert self.pipeline.pool is not None  # nosec B101 # narrows the type; workers were started before
        while not self.killed.empty():
            self.killed.get()
            self.pipeline.pool.start_one()

    def strike(self) -> None:
        pool = self.pipeline.pool
        assert pool is not None  # nosec B101 # as above
        workers = [w for w in pool.workers if w.alive]
        killable = [w for w in workers if w is not self.witness]
        if killable and self.random.random() < 0.5:
            victim = self.random.choice(killable)
            self.faults.append(Fault(time.monotonic() - self.t0, "kill", victim.worker_id))
            kill_hard(victim.process)
            pool.workers.remove(victim)
            self.killed.put(victim.worker_id)
            return
        frozen = self.random.choice(workers)
        seconds = round(self.random.uniform(1.0, SESSION_TIMEOUT_S + 4.0), 1)
        self.faults.append(Fault(time.monotonic() - self.t0, "stop", frozen.worker_id, seconds))
        with paused(frozen.process.pid):
            self.stopping.wait(seconds)  # the fault's duration; a stop request ends it early


def witness_rss(
    samples: list[dict[str, Any]],
    witness: str,
    warm_up_s: float,
    caught_up_lag: float,
    window: int = 10,
    warm_window: int = 60,
) -> tuple[int, int] | None:
    """The witness's RSS after warm-up and at the end, from samples taken while the lag was at most
    ``caught_up_lag`` ticks: the median of the first ``warm_window`` of them (fewer if the run has fewer, always
    leaving ``window`` for the end) and of the last ``window``; None when there are fewer than two windows.

    A backlog (after a take-over or a freeze) fills buffers that are given back once it is drained, so samples
    taken during one would count a backlog as growth; and a take-over's peak lasts some seconds even when the
    lag is small, so the reference after warm-up spans a minute (a 30-minute run whose first 10 caught-up
    samples held such a peak read 225 MB there against a 209 MB median for that minute).

    >>> samples = [{"t": t, "lag": 0, "rss": {"w-1": 100 + t}} for t in range(30)]
    >>> samples[12]["lag"] = 5_000  # behind: left out
    >>> witness_rss(samples, "w-1", warm_up_s=10, caught_up_lag=100, window=5, warm_window=5)
    (113, 127)
    >>> witness_rss(samples, "w-1", warm_up_s=10, caught_up_lag=100, window=5)  # 14 samples before the end's 5
    (117, 127)
    >>> witness_rss(samples[:15], "w-1", warm_up_s=10, caught_up_lag=100, window=5) is None
    True
    """
    after = [s["rss"][witness] for s in samples
             if s["t"] >= warm_up_s and s["lag"] <= caught_up_lag and witness in s["rss"]]  # fmt: skip
    if len(after) < 2 * window:
        return None
    warm = after[: min(warm_window, len(after) - window)]
    return int(statistics.median(warm)), int(statistics.median(after[-window:]))


def measure_capacity(pipeline: Pipeline, tap: AnswerTap, ticks: int, seed: int) -> float:
    """Ticks per second the workers answer a backlog of ``ticks`` (a lower bound: producing is inside)."""
    feed = SyntheticFeed(symbol_names(50), seed=seed, clock_ms=ms_clock())
    before = tap.answered
    started = time.monotonic()
    publisher = pipeline.publisher()
    publish_all(publisher, feed, limit=ticks)
    if publisher.close(120) != 0:  # a check, so not an assert: python -O would drop it
        raise RuntimeError("capacity backlog not delivered")
    wait_for(lambda: tap.answered >= before + ticks, 300, f"the capacity backlog of {ticks} ticks",
             check=pipeline.check_workers_alive, diagnostics=pipeline.worker_logs)  # fmt: skip
    return ticks / (time.monotonic() - started)


def run(options: SoakOptions, bootstrap_servers: str, work_dir: Path) -> SoakResult:
    unique = new_unique()
    pipeline = Pipeline(
        bootstrap_servers=bootstrap_servers, unique=unique, log_dir=work_dir / f"soak-{unique}",
        partitions=options.partitions, group_prefix="soak", worker_prefix="worker",
        extra_env={"TICKCAST_SNAPSHOT_KEY": new_key(), "TICKCAST_LOG_LEVEL": "WARNING",
                   "TICKCAST_SNAPSHOT_EVERY_TICKS": str(SNAPSHOT_EVERY_TICKS),
                   "TICKCAST_SNAPSHOT_EVERY_S": str(SNAPSHOT_EVERY_S),
                   **({"TICKCAST_LINGER_MS": str(options.linger_ms)} if options.linger_ms is not None else {})},
    )  # fmt: skip
    pipeline.create_topics()
    tap = AnswerTap(CommonSettings(**pipeline.settings_kwargs())).start()
    try:
        workers = pipeline.start_workers(options.workers)
        wait_for_assignment(pipeline, workers, timeout_s=120)
        witness = workers[0]
        capacity = None if options.rate else measure_capacity(pipeline, tap, options.capacity_ticks, options.seed)
        rate = options.rate or 0.5 * (capacity or 0.0)
        if options.max_rate:
            rate = min(rate, options.max_rate)
        sent_before = options.capacity_ticks if capacity else 0
        t0 = time.monotonic()
        duration_s = options.minutes * 60
        warm_up_s = options.warm_up_s if options.warm_up_s is not None else min(300.0, max(60.0, 0.2 * duration_s))
        chaos = Chaos(pipeline, witness, options.fault_every_s, options.seed, t0)
        batching: dict[str, Any] = {"linger.ms": options.linger_ms} if options.linger_ms is not None else {}
        feed = BackgroundFeed(pipeline.publisher(**batching), symbols=options.symbols, rate=rate, seed=options.seed)
        samples: list[dict[str, Any]] = []
        with feed:
            chaos.start()
            while (elapsed := time.monotonic() - t0) < duration_s:
                if chaos.error is not None:
                    raise RuntimeError(f"the chaos thread failed: {chaos.error!r}") from chaos.error
                chaos.restart()
                sent = sent_before + feed.sent
                rss = {w.worker_id: resident_bytes(w.process.pid) for w in list(pipeline.workers) if w.alive}
                samples.append({"t": round(elapsed, 2), "sent": sent, "answered": tap.answered,
                                "lag": max(0, sent - tap.answered), "rss": rss})  # fmt: skip
                if len(samples) % 60 == 0:  # a long run shows it is alive, once a minute
                    print(f"t={elapsed:.0f}s sent={sent} answered={tap.answered} lag={samples[-1]['lag']} "
                          f"faults={len(chaos.faults)} rss_mb={ {k: round(v / 1e6) for k, v in rss.items()} }",
                          flush=True)  # fmt: skip
                chaos.stopping.wait(1.0)  # the sampling period
            chaos.stopping.set()
            chaos.join(timeout=60)
            chaos.restart()
            sent = sent_before + feed.stop()
        feed_stopped = time.monotonic()
        unfinished = None
        try:
            wait_for(lambda: tap.answered >= sent, DRAIN_AFTER_FEED_S, f"all {sent} ticks answered after the soak",
                     check=pipeline.check_workers_alive)  # fmt: skip
        except TimeoutError as exc:
            # The result still says how far behind the workers were, and the chart shows how the lag grew.
            unfinished = (
                f"{sent - tap.answered} of {sent} ticks unanswered {DRAIN_AFTER_FEED_S:.0f}s after the feed stopped"
            )
            print(f"soak: {exc}", flush=True)
        drained_s = time.monotonic() - feed_stopped
        if unfinished is None and witness.alive:
            for _ in range(TAIL_SAMPLES):  # caught up and idle: the end of the run as the witness holds it
                samples.append({"t": round(time.monotonic() - t0, 2), "sent": sent, "answered": tap.answered,
                                "lag": max(0, sent - tap.answered),
                                "rss": {witness.worker_id: resident_bytes(witness.process.pid)}})  # fmt: skip
                time.sleep(1.0)  # the sampling period, as in the run; nothing is waited for
        compared = witness_rss(samples, witness.worker_id, warm_up_s, rate * CAUGHT_UP_LAG_S, RSS_WINDOW)
        breaks = None
        duplicates = tap.duplicates
        lost = sent - tap.answered
        if sent <= LEDGER_LIMIT and unfinished is None:
            pipeline.stop()
            ledger = read_ledger(CommonSettings(**pipeline.settings_kwargs()))
            lost, duplicates, breaks = len(ledger.lost), ledger.duplicates, len(ledger.breaks)
        lags = [s["lag"] for s in samples]
        return SoakResult(
            options={k: str(v) for k, v in asdict(options).items()},
            capacity_per_s=round(capacity, 1) if capacity else None,
            rate_per_s=round(rate, 1),
            sent=sent,
            lost=lost,
            duplicates=duplicates,
            duplicate_bound=duplicate_bound(chaos.faults, options.partitions),
            faults=chaos.faults,
            witness_rss_warm_mb=round(compared[0] / 1e6, 1) if compared else None,
            witness_rss_end_mb=round(compared[1] / 1e6, 1) if compared else None,
            witness_rss_growth=round((compared[1] - compared[0]) / compared[0], 4) if compared else None,
            max_lag_ticks=max(lags, default=0),
            max_lag_s=round(max(lags, default=0) / rate, 2) if rate else 0.0,
            lag_bound_s=LAG_BOUND_S,
            end_lag_ticks=max(0, sent - tap.answered),
            drain_after_feed_s=round(drained_s, 2),
            learning_breaks=breaks,
            samples=samples,
            unfinished=unfinished,
        )
    finally:
        tap.stop()
        pipeline.stop()


def soak(options: SoakOptions, work_dir: Path) -> SoakResult:
    """Run on a private broker; write ``soak.json`` and ``soak.png`` into ``options.out_dir``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedBroker(log_file=work_dir / "broker.log") as broker:
        result = run(options, broker.bootstrap_servers, work_dir)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    (options.out_dir / "soak.json").write_text(json.dumps(asdict(result), indent=2, default=str))
    draw(result.samples, [asdict(f) for f in result.faults], options.out_dir / "soak.png", result.summary())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=None, help="ticks/s (default: half of measured capacity)")
    parser.add_argument("--max-rate", type=float, default=None)
    parser.add_argument("--fault-every-s", type=float, default=FAULT_EVERY_S, help="mean gap between faults")
    parser.add_argument("--capacity-ticks", type=int, default=30_000, help="backlog that measures capacity")
    parser.add_argument("--warm-up-s", type=float, default=None, help="default: 20%% of the run, 60-300 s")
    parser.add_argument("--linger-ms", type=int, default=None, help="feed and predictions batching (embedded broker)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / ".tickcast" / "soak")
    args = parser.parse_args(argv)
    configure_logging("soak", "WARNING", "console")
    options = SoakOptions(
        minutes=args.minutes, rate=args.rate, max_rate=args.max_rate, fault_every_s=args.fault_every_s,
        capacity_ticks=args.capacity_ticks, warm_up_s=args.warm_up_s, out_dir=args.out, linger_ms=args.linger_ms,
    )  # fmt: skip
    result = soak(options, args.work_dir)
    print(result.summary())
    ok = (
        result.unfinished is None
        and result.lost == 0
        and result.duplicates <= result.duplicate_bound
        and result.end_lag_ticks == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
