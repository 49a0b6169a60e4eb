"""Scenario 4, rebalance and failover under a steady feed.

One worker owns every partition while a paced producer sends ``rebalance_rate`` ticks/s. After a
steady phase a second worker starts: the longest gap in predictions around its join is measured.
Once the group has settled, the first worker is killed with SIGKILL (by PID, so it cannot leave the
group), and the time until predictions for its partitions come back from the survivor is measured.
That time is bounded below by the group session timeout (6 s here, the Tansu workaround the tests
and the demo use). Gaps are between arrival times at the bench's tap.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from typing import Any

from bench.core import UNMEASURED, BenchError, Context, Row, ScenarioResult, hold, raise_if_failed
from bench.feeds import PacedFeed, prime
from bench.measures import longest_gap
from bench.processors import WorkerSet
from bench.taps import LiveTap, Seen
from tickcast.predictor.settings import PredictorSettings
from tickcast.testing.pipeline import SESSION_TIMEOUT_S
from tickcast.testing.stats import worker_stats
from tickcast.testing.waiting import wait_for

BIN_S = 0.1
#: The window before the kill over which the victim's rate per partition is read for the replay bound.
RATE_WINDOW_S = 5.0
#: How often a worker looks for due checkpoints when its partitions are otherwise quiet (predictor.app's timer).
CHECKPOINT_TIMER_S = 0.5


def run(context: Context) -> ScenarioResult:
    options = context.options
    # Snapshots on, as in production: the newcomer restores what it takes over, and replays are skipped.
    pipeline = context.pipeline("rebalance", snapshots=True)
    workers = WorkerSet(pipeline)
    feed = PacedFeed(pipeline, options.rebalance_rate, options.symbols, limit=None, linger_ms=5)
    tap: LiveTap | None = None
    events: dict[str, float] = {}
    missing: int | None = None

    def check() -> None:
        workers.check_alive()
        raise_if_failed("rebalance", feed, tap)

    try:
        workers.start(1)
        victim = workers.workers[0]
        workers.wait_ready(1)
        live = tap = LiveTap(pipeline, options.tap_fetch_wait_ms)
        live.start()
        primed = prime(pipeline, live.answered, options.symbols, feed.seed, check)
        feed.start()
        events["feed_started"] = time.time()
        hold(options.rebalance_steady_s, check)

        events["join_started"] = time.time()
        workers.start(1)
        joiner = workers.workers[1]
        # Process start-up (imports, web server) is separate from the group join that follows it.
        wait_for(
            lambda: worker_stats(joiner) is not None, 60, "the second worker's /stats", check=check, interval_s=0.05
        )
        events["joiner_up"] = time.time()
        workers.wait_ready(2, timeout_s=120)
        events["join_done"] = time.time()
        hold(options.rebalance_settle_s, check)

        assignment = workers.assignment()
        if assignment is None:
            raise BenchError("rebalance: a worker stopped answering /stats before the kill")
        orphans = sorted(assignment[victim.worker_id])
        events["kill"] = time.time()
        workers.kill(victim)

        def resumed() -> bool:
            back = {
                s.partition for s in list(live.seen) if s.received_s >= events["kill"] and s.worker != victim.worker_id
            }
            return set(orphans) <= back

        what = f"predictions for partitions {orphans} to resume after the kill"
        wait_for(resumed, 120, what, check=check, interval_s=0.1)
        events["resumed"] = time.time()
        hold(options.rebalance_settle_s, check)
        feed.stop()
        check()
        events["feed_stopped"] = time.time()
        try:
            wait_for(lambda: live.answered() >= primed + feed.sent, 60, "every tick to be answered", check=check)
            missing = 0
        except UNMEASURED:
            missing = primed + feed.sent - live.answered()
    except UNMEASURED as exc:
        raise BenchError(f"{exc}\n{workers.logs()}") from exc
    finally:
        feed.stop()
        if tap is not None:
            tap.stop()
        workers.stop()

    seen = list(live.seen)
    times = [s.received_s for s in seen]
    join_window = (events["join_started"], events["join_done"] + options.rebalance_settle_s)
    kill_window = (events["kill"], events["resumed"] + options.rebalance_settle_s)
    resume_after = {
        p: min(
            s.received_s
            for s in seen
            if s.partition == p and s.received_s >= events["kill"] and s.worker != victim.worker_id
        )
        - events["kill"]
        for p in orphans
    }
    others = [p for p in range(options.partitions) if p not in orphans]
    answers = Counter((s.partition, s.offset) for s in seen)
    metrics: dict[str, Any] = {
        "events": {k: round(v - events["feed_started"], 3) for k, v in events.items()},
        "rate_achieved": round(feed.sent / (feed.finished_at - feed.started_at), 1),
        "ticks_sent": feed.sent,
        "steady_longest_gap_s": longest_gap(times, events["feed_started"] + 1.0, events["join_started"]),
        "join_s": round(events["join_done"] - events["join_started"], 3),
        "joiner_startup_s": round(events["joiner_up"] - events["join_started"], 3),
        "group_join_s": round(events["join_done"] - events["joiner_up"], 3),
        "join_longest_gap_s": longest_gap(times, *join_window),
        "join_longest_partition_gap_s": _partition_gap(seen, options.partitions, *join_window),
        "killed_partitions": orphans,
        "failover_s": round(max(resume_after.values()), 3),
        "failover_first_partition_s": round(min(resume_after.values()), 3),
        "failover_by_partition_s": {str(p): round(v, 3) for p, v in sorted(resume_after.items())},
        "failover_longest_gap_s": longest_gap(times, *kill_window),
        "survivor_partitions_longest_gap_s": _partition_gap(
            [s for s in seen if s.partition in others], options.partitions, *kill_window, only=others
        ),
        "answered_twice": sum(1 for n in answers.values() if n > 1),
        "answered_twice_bound": replay_bound(seen, victim.worker_id, orphans, events["kill"]),
        "missing": missing,
        "timeline": _timeline(seen, events["feed_started"]),
    }
    rows = [
        Row("steady 1 worker: longest gap", metrics["steady_longest_gap_s"], "s"),
        Row("join: second worker start to partitions split", metrics["join_s"], "s"),
        Row("join: of which process start-up (until /stats answers)", metrics["joiner_startup_s"], "s"),
        Row("join: longest gap in predictions", metrics["join_longest_gap_s"], "s"),
        Row("join: longest gap on one partition", metrics["join_longest_partition_gap_s"], "s"),
        Row("kill -9: killed worker's partitions resume after", metrics["failover_s"], "s"),
        Row("kill -9: longest gap in predictions", metrics["failover_longest_gap_s"], "s"),
        Row("kill -9: longest gap on survivor's partitions", metrics["survivor_partitions_longest_gap_s"], "s"),
        Row("ticks answered twice (replayed after kill)", metrics["answered_twice"], "ticks"),
        Row(
            "ticks answered twice: bound (the killed worker's rate per partition times its checkpoint interval)",
            metrics["answered_twice_bound"],
            "ticks",
        ),
        Row("ticks never answered", missing, "ticks"),
    ]
    return ScenarioResult(
        name="rebalance",
        title="Rebalance and failover: a worker joins, then one is killed with SIGKILL",
        inputs={
            "rate_per_s": options.rebalance_rate,
            "symbols": options.symbols,
            "partitions": options.partitions,
            "model": options.model,
            "steady_s": options.rebalance_steady_s,
            "settle_s": options.rebalance_settle_s,
            "session_timeout_s": SESSION_TIMEOUT_S,
            "snapshots": "on (default cadence)",
        },
        metrics=metrics,
        rows=rows,
        notes=[
            "Failover is bounded below by the session timeout: the group notices a SIGKILLed member only when "
            "its heartbeats have been missing that long."
        ],
    )


def replay_bound(
    seen: list[Seen],
    victim: str,
    partitions: list[int],
    kill_at: float,
    every_s: float | None = None,
    every_ticks: int | None = None,
) -> int:
    """How many ticks a kill -9 may have answered past its partitions' last checkpoints, so answered again.

    A partition is checkpointed (and committed) every ``every_ticks`` ticks or ``every_s`` seconds, whichever
    comes first, the latter looked for every ``CHECKPOINT_TIMER_S``; the defaults are the worker's. The killed
    worker's rate on each partition is read over the ``RATE_WINDOW_S`` before the kill.

    >>> seen = [Seen(9.0 + i / 40, "S", 0, i, 0, 0, "w1") for i in range(40)]  # 40 ticks/s on partition 0
    >>> replay_bound(seen, "w1", [0], kill_at=10.0, every_s=5.0, every_ticks=1000)  # 40 a second for 5.5 s
    220
    >>> replay_bound(seen, "w1", [0], kill_at=10.0, every_s=5.0, every_ticks=100)
    100
    """
    defaults = PredictorSettings.model_fields
    every_s = every_s if every_s is not None else defaults["snapshot_every_s"].default
    every_ticks = every_ticks if every_ticks is not None else defaults["snapshot_every_ticks"].default
    window = Counter(
        s.partition for s in seen if s.worker == victim and kill_at - RATE_WINDOW_S <= s.received_s < kill_at
    )
    span = min(RATE_WINDOW_S, kill_at - min((s.received_s for s in seen), default=kill_at)) or RATE_WINDOW_S
    return sum(min(every_ticks, math.ceil(window[p] / span * (every_s + CHECKPOINT_TIMER_S))) for p in partitions)


def _partition_gap(seen: list[Seen], partitions: int, start: float, end: float, only: list[int] | None = None) -> float:
    by_partition: dict[int, list[float]] = defaultdict(list)
    for s in seen:
        by_partition[s.partition].append(s.received_s)
    return max(longest_gap(by_partition[p], start, end) for p in (only if only is not None else range(partitions)))


def _timeline(seen: list[Seen], t0: float) -> dict[str, Any]:
    """Predictions per second in ``BIN_S`` bins, per worker, from the feed's start."""
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for s in seen:
        counts[s.worker][int((s.received_s - t0) / BIN_S)] += 1
    last = max((max(c) for c in counts.values() if c), default=0)
    return {
        "bin_s": BIN_S,
        "per_worker": {w: [round(c.get(b, 0) / BIN_S, 1) for b in range(last + 1)] for w, c in sorted(counts.items())},
    }
