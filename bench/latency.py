"""Scenario 3, latency: tick produced (its Kafka timestamp) to prediction received, at fixed rates.

For each rate, the plain loop and one worker each get a fresh broker and pipeline, as issue 18's first-10-s
target names, so what ran before (a full run drains millions of ticks into the bench's broker first) cannot
weigh on it; alternated in one process, a filled broker and fresh ones read alike (HISTORY, 2026-12-03).
The processor starts and owns every partition first, then a paced producer (linger ``--feed-linger-ms``,
5 ms by default: the caller's knob, not tickcast's; its clock starts once its first tick is delivered, so
no tick waits for the producer's own warm-up) sends ``rate`` ticks/s for warm-up + measured seconds, and a
tap in this process stamps each prediction when it arrives. Ticks produced during the warm-up are left
out. Both timestamps come from this machine's clock. The processors run issue 18's latency profile
(``bench.core.LATENCY_PROFILE_ENV``; ``--latency-defaults`` runs them at their defaults).

The total is split in two: tick → ``predicted_at`` (the processor's fetch wait and queueing) and
``predicted_at`` → received (its producer linger, the broker, the tap's own 5 ms fetch wait); per
second of the feed, ``bench.latency_stages`` splits it three ways.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from dataclasses import replace
from typing import Any

from bench import latency_stages, topology
from bench.core import UNMEASURED, BenchError, Context, Options, Row, ScenarioResult, raise_if_failed, ratio
from bench.feeds import PacedFeed, prime
from bench.latency_table import (
    FIRST_SECONDS,
    GENERAL_NOTES,
    KINDS,
    SPLIT,
    TARGET_RATE,
    WINDOW_S,
    round_note,
    rows_for,
    run_notes,
    summary,
)
from bench.measures import bucket_percentile, percentile
from bench.processors import PER_TICK, OwnBuckets, Processor, make_processor
from bench.sampling import CpuSampler
from bench.taps import LiveTap, Seen
from tickcast.broker.embedded import EmbeddedBroker
from tickcast.predictor.gc_pauses import GENERATIONS
from tickcast.predictor.settings import PredictorSettings
from tickcast.testing.waiting import wait_for


def measure(context: Context, kind: str, rate: float, where: str = topology.SHARED) -> dict[str, Any]:
    """One processor at one rate on a fresh broker and pipeline, its processes placed as topology ``where`` says."""
    label = f"latency-{kind}-{rate:g}-{where}"
    with EmbeddedBroker(log_file=context.work_dir / f"{label}-{time.time_ns()}-broker.log") as broker:
        fresh = replace(context, bootstrap_servers=broker.bootstrap_servers, broker_pid=broker.pid or 0)
        return _measure_on(fresh, kind, rate, where, label)


def _measure_on(context: Context, kind: str, rate: float, where: str, label: str) -> dict[str, Any]:
    options = context.options
    placement = topology.placement(where)
    pipeline = context.pipeline(label, scenario="latency")
    processor: Processor = make_processor(kind, pipeline)
    sampler = CpuSampler()
    sampler.watch("broker", context.broker_pid)
    total_s = options.latency_warmup_s + options.latency_seconds
    feed = PacedFeed(pipeline, rate, options.symbols, limit=int(rate * total_s), linger_ms=options.feed_linger_ms)
    tap: LiveTap | None = None

    def check() -> None:
        processor.check_alive()
        raise_if_failed(label, feed, tap)

    cpus_seen: dict[str, list[int]] = {}
    with topology.pinned(placement, context.broker_pid) as pinning:
        try:
            processor.start(1)
            pinning.measured(processor.pids().values())
            for name, pid in processor.pids().items():
                sampler.watch(name, pid)
            processor.wait_ready(1)
            # Again, now that it runs: threads started meanwhile by a thread pinned too late are caught here.
            pinning.measured(processor.pids().values())
            live = tap = LiveTap(pipeline, options.tap_fetch_wait_ms)
            live.start()
            primed = prime(pipeline, live.answered, options.symbols, feed.seed, check)
            own = OwnLatencySnapshots(processor, fine_until=time.time() + total_s)
            own.take(force=True)
            sampler.start()
            feed.start()
            feeding = f"{label}: the paced feed to finish"
            wait_for(lambda: own.take() or not feed.is_alive(), total_s + 60, feeding, check=check)
            check()
            wait_for(
                lambda: live.answered() >= primed + feed.sent,
                60 + feed.sent / 200,
                f"{label}: every tick answered",
                check=check,
            )
            own.take(force=True)
            cpus_seen = pinning.seen()  # before the processor stops: did the pins hold?
        except UNMEASURED as exc:
            raise BenchError(f"{exc}\n{processor.logs()}") from exc
        finally:
            feed.stop()
            if tap is not None:
                tap.stop()
            sampler.stop()
            processor.stop()

    measured_from_ms = (feed.started_at + options.latency_warmup_s) * 1000
    first_seen: dict[tuple[int, int], Any] = {}
    for s in live.seen:
        first_seen.setdefault((s.partition, s.offset), s)
    kept = [s for s in first_seen.values() if s.produced_ms >= measured_from_ms]
    if not kept:
        raise BenchError(f"{label}: no prediction of a tick produced after the warm-up")
    total = [s.received_s * 1000 - s.produced_ms for s in kept]
    to_processor = [s.predicted_us / 1000 - s.produced_ms for s in kept]
    from_processor = [s.received_s * 1000 - s.predicted_us / 1000 for s in kept]
    window = (measured_from_ms / 1000, feed.finished_at)
    timeline = _timeline(kept, measured_from_ms)
    first_seconds = [
        t for s, t in zip(kept, total, strict=True) if s.produced_ms < measured_from_ms + FIRST_SECONDS * 1000
    ]
    names = [n for n in sampler.pids if n != "broker"]
    first_rows = latency_stages.by_second(
        first_seen.values(),
        feed.acked_ms,
        feed.started_at * 1000,
        int(options.latency_warmup_s + FIRST_SECONDS),
        options.latency_warmup_s,
    )
    return {
        "kind": kind,
        "topology": {**placement.describe(), "seen": cpus_seen},
        "rate_target": rate,
        "rate_achieved": round(feed.sent / (feed.finished_at - feed.started_at), 1),
        "samples": len(kept),
        "duplicates": len(live.seen) - len(first_seen),
        "p50_ms": round(percentile(total, 50), 2),
        "p99_ms": round(percentile(total, 99), 2),
        "p999_ms": round(percentile(total, 99.9), 2),
        "max_ms": round(max(total), 2),
        "p99_first_seconds_ms": round(percentile(first_seconds, 99), 2) if first_seconds else None,
        "own_p99_ms": own.p99_ms(),
        "own_batch_p99_ms": {name: own.p99_ms(name) for name in SPLIT},
        "gc_pauses": {name: own.pauses(name) for name in GENERATIONS},
        "windows": _windows(kept, measured_from_ms, own),
        "own_timeline": own.timeline(feed.started_at),
        "stages_by_second": first_rows,
        "own_p99_by_second": own.by_second(feed.started_at),
        "to_processor_p50_ms": round(percentile(to_processor, 50), 2),
        "to_processor_p99_ms": round(percentile(to_processor, 99), 2),
        "from_processor_p50_ms": round(percentile(from_processor, 50), 2),
        "from_processor_p99_ms": round(percentile(from_processor, 99), 2),
        "processor_cores": round(sum(sampler.utilisation(n, *window) for n in names), 3),
        "timeline": timeline,
        # Latency that keeps growing means the processor (or the broker) does not keep up with the rate.
        "fell_behind": timeline[-1][1] > max(100.0, 3 * timeline[0][1]),
        "broker_cores": round(sampler.utilisation("broker", *window), 3),
    }


class OwnLatencySnapshots:
    """The processor's own-latency histogram, read every second until ``fine_until`` (a time), then every
    :data:`WINDOW_S` seconds (and whenever forced)."""

    def __init__(self, processor: Processor, fine_until: float = 0.0) -> None:
        self.processor = processor
        self.fine_until = fine_until
        self.taken: list[tuple[float, OwnBuckets]] = []

    def take(self, force: bool = False) -> bool:
        """Read the histogram if its interval has passed (or ``force``); always False (for a wait predicate)."""
        now = time.time()
        interval = 1.0 if now < self.fine_until else WINDOW_S
        if force or not self.taken or now - self.taken[-1][0] >= interval:
            buckets = self.processor.own_latency()
            if buckets is not None:
                self.taken.append((now, buckets))
        return False

    def p99_ms(self, name: str = PER_TICK) -> float | None:
        """Over the whole run: from the first snapshot (after priming) to the last (every tick answered)."""
        if len(self.taken) < 2:
            return None
        return _p99_ms(self.taken[0][1], self.taken[-1][1], name)

    def pauses(self, name: str) -> dict[str, float | int | None]:
        """Over the whole run, the collector's pauses of one generation: how many, and the longest (ms, its bucket).

        >>> own = OwnLatencySnapshots(None)  # type: ignore[arg-type]
        >>> own.taken = [(0.0, {"gc_gen0": [("0.001", 1), ("+Inf", 1)]}),
        ...              (9.0, {"gc_gen0": [("0.001", 3), ("0.002", 4), ("+Inf", 4)]})]
        >>> own.pauses("gc_gen0"), own.pauses("gc_gen2")
        ({'count': 3, 'longest_ms': 2.0}, {'count': None, 'longest_ms': None})
        """
        if len(self.taken) < 2 or name not in self.taken[-1][1]:
            return {"count": None, "longest_ms": None}
        before, after = dict(self.taken[0][1].get(name, [])), self.taken[-1][1][name]
        count = after[-1][1] - before.get(after[-1][0], 0)
        longest = bucket_percentile(list(before.items()), after, 100)
        return {"count": count, "longest_ms": None if longest is None else round(longest * 1000, 2)}

    def between(self, start: float, end: float, name: str = PER_TICK) -> float | None:
        """p99 (ms) between the snapshots taken nearest ``start`` and nearest ``end`` (None if those are one)."""
        if not self.taken:
            return None
        before = min(range(len(self.taken)), key=lambda i: abs(self.taken[i][0] - start))
        after = min(range(len(self.taken)), key=lambda i: abs(self.taken[i][0] - end))
        if after <= before:
            return None
        return _p99_ms(self.taken[before][1], self.taken[after][1], name)

    def by_second(self, started_at: float) -> dict[int, float | None]:
        """Per-tick p99 (ms) of each interval of about one second, by its second from ``started_at``."""
        return {
            round(start - started_at): _p99_ms(before, after, PER_TICK)
            for (start, before), (end, after) in itertools.pairwise(self.taken)
            if end - start < 1.5 and start >= started_at - 0.5
        }

    def timeline(self, started_at: float) -> list[dict[str, Any]]:
        """Every interval between snapshots, warm-up and catch-up included: seconds from ``started_at``, p99s (ms)."""
        return [
            {
                "from_s": round(start - started_at, 1),
                "to_s": round(end - started_at, 1),
                "ticks": _count(before, after),
                "p99_ms": _p99_ms(before, after, PER_TICK),
                **{f"batch_{name}_p99_ms": _p99_ms(before, after, name) for name in SPLIT},
            }
            for (start, before), (end, after) in itertools.pairwise(self.taken)
        ]


def _count(before: OwnBuckets, after: OwnBuckets) -> int:
    """Ticks observed between two snapshots (the +Inf bucket of the per-tick histogram)."""
    return after[PER_TICK][-1][1] - (before[PER_TICK][-1][1] if before.get(PER_TICK) else 0)


def _p99_ms(before: OwnBuckets, after: OwnBuckets, name: str) -> float | None:
    if name not in after:
        return None
    value = bucket_percentile(before.get(name, []), after[name], 99)
    return None if value is None else round(value * 1000, 2)


def _windows(kept: list[Seen], start_ms: float, own: OwnLatencySnapshots) -> list[dict[str, Any]]:
    """Per :data:`WINDOW_S` window of the measurement: end-to-end p50/p99 and the processor's own p99."""
    by_window: dict[int, list[float]] = defaultdict(list)
    for s in kept:
        by_window[int((s.produced_ms - start_ms) / 1000 / WINDOW_S)].append(s.received_s * 1000 - s.produced_ms)
    rows = []
    for index, values in sorted(by_window.items()):
        start_s = start_ms / 1000 + index * WINDOW_S
        own_p99 = {name: own.between(start_s, start_s + WINDOW_S, name) for name in (PER_TICK, *SPLIT)}
        rows.append(
            {
                "from_s": index * WINDOW_S,
                "ticks": len(values),
                "p50_ms": round(percentile(values, 50), 1),
                "p99_ms": round(percentile(values, 99), 1),
                "own_p99_ms": own_p99[PER_TICK],
                "own_batch_p99_ms": {name: own_p99[name] for name in SPLIT},
            }
        )
    return rows


def _timeline(kept: list[Seen], start_ms: float) -> list[list[float]]:
    """[second of the measurement, p50 ms, max ms, p99 ms] by when the tick was produced: shows falling behind
    (p99 last, so readers of the first three are unchanged).

    >>> seen = [Seen((1000 + 10 * i + i) / 1000, "A", 0, i, 1000 + 10 * i, 0, "w") for i in range(101)]
    >>> _timeline(seen, start_ms=1000.0)  # latency i ms for the tick produced at 10 * i ms
    [[0, 49.0, 99.0, 98.0], [1, 100.0, 100.0, 100.0]]
    """
    by_second: dict[int, list[float]] = defaultdict(list)
    for s in kept:
        by_second[int((s.produced_ms - start_ms) / 1000)].append(s.received_s * 1000 - s.produced_ms)
    return [
        [second, round(percentile(v, 50), 1), round(max(v), 1), round(percentile(v, 99), 1)]
        for second, v in sorted(by_second.items())
    ]


def run(context: Context) -> ScenarioResult:
    options = context.options
    topologies = options.latency_topologies or (topology.default(),)
    by_rate: dict[str, dict[str, Any]] = {}
    by_topology: dict[str, dict[str, Any]] = {where: {} for where in topologies}
    rows: list[Row] = []
    notes: list[str] = []
    for rate in options.rates:
        rounds: dict[str, list[dict[str, Any]]] = {where: [] for where in topologies}
        for index in range(rounds_at(options, rate)):
            # Every other round in the reverse order: each run has its own broker, but the machine warms up and
            # its load drifts, so whatever always went second would look worse.
            order = [(where, kind) for where in topologies for kind in KINDS]
            if index % 2:
                order.reverse()
            runs = {(where, kind): measure(context, kind, rate, where) for where, kind in order}
            for where in topologies:
                pair = {kind: runs[(where, kind)] for kind in KINDS}
                rounds[where].append(
                    {**pair, "worker_p99_over_plain": ratio(pair["worker"]["p99_ms"], pair["plain"]["p99_ms"])}
                )
        key = f"{rate:g}"
        for where in topologies:
            summed = summary(rounds[where])
            by_topology[where][key] = {"summary": summed, "rounds": rounds[where]}
            rows += rows_for(rate, where, summed, tagged=len(topologies) > 1)
            for index, pair in enumerate(rounds[where]):
                notes.append(round_note(key, where, index, pair))
        # The charts and earlier readers take one run per processor: the first topology's median round.
        by_rate[key] = _median_round(rounds[topologies[0]])
    for where in topologies:
        for key, entry in by_topology[where].items():
            for index, pair in enumerate(entry["rounds"]):
                for kind in KINDS:
                    notes += run_notes(f"{kind} [{where}, round {index + 1}]", key, pair[kind])
    notes += GENERAL_NOTES
    if TARGET_RATE not in options.rates:
        notes.append(f"The targets are for {TARGET_RATE:g} ticks/s, which this run did not measure.")
    return ScenarioResult(
        name="latency",
        title="Latency: tick produced to prediction received, worker vs plain loop at fixed rates",
        inputs={
            "rates_per_s": list(options.rates),
            "seconds_per_rate": options.latency_seconds,
            "warmup_s_excluded": options.latency_warmup_s,
            "symbols": options.symbols,
            "partitions": options.partitions,
            "model": options.model,
            "configuration": options.configuration("latency"),
            "producer_linger_ms": options.feed_linger_ms,
            "tap_fetch_wait_ms": options.tap_fetch_wait_ms,
            "processor_fetch_wait_ms": _setting(options, "TICKCAST_FETCH_MAX_WAIT_MS"),
            "processor_linger_ms": _setting(options, "TICKCAST_LINGER_MS"),
            "topologies": [topology.placement(where).describe() for where in topologies],
            "rounds": options.latency_rounds,
            "broker": "a fresh one per processor, rate and round",
        },
        metrics={"by_rate": by_rate, "by_topology": by_topology},
        rows=rows,
        notes=notes,
    )


def rounds_at(options: Options, rate: float) -> int:
    """Rounds at ``rate``: ``--latency-rounds`` at the targets' rate, one at the others.

    The first-10-s p99 target is judged on one short window on a broker that slows as it fills, so one round
    is one sample of a drifting machine; the other rates carry no target and keep one round each.

    >>> rounds_at(Options(), 500.0), rounds_at(Options(), 200.0), rounds_at(Options().quick(), 500.0)
    (3, 1, 1)
    """
    return options.latency_rounds if rate == TARGET_RATE else 1


def _setting(options: Options, name: str) -> str:
    """What the latency scenario's processes ran for one ``TICKCAST_*`` setting, for its ``inputs``.

    >>> _setting(Options(latency_profile=False), "TICKCAST_LINGER_MS"), _setting(Options(), "TICKCAST_LINGER_MS")
    ('default (5)', '1')
    """
    field = PredictorSettings.model_fields[name.removeprefix("TICKCAST_").lower()]
    return options.settings("latency").get(name, f"default ({field.default})")


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round whose worker p99 over the first seconds is the median one (the lower middle of an even count).

    >>> _median_round([{"worker": {"p99_first_seconds_ms": v}} for v in (30.0, 10.0, 20.0)])["worker"]
    {'p99_first_seconds_ms': 20.0}
    """
    ordered = sorted(rounds, key=lambda r: r["worker"]["p99_first_seconds_ms"] or 0.0)
    return ordered[(len(ordered) - 1) // 2]
