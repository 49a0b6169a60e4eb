"""Options, the per-run context, the result shape every scenario returns, and how a scenario fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from bench.sampling import load_average
from tickcast.predictor.snapshot_keys import new_key
from tickcast.testing.pipeline import Pipeline, new_unique

#: Set explicitly on every bench topic: Quix Streams derives its changelog topics' retention from the source
#: topic's and fails when the broker reports none (the embedded broker reports only what a topic was created with).
TOPIC_CONFIG = {"retention.ms": "604800000", "retention.bytes": "-1"}

#: Workers save state only when they have a key; one random key per bench run (a fixed one would be public).
BENCH_SNAPSHOT_KEY = new_key()


class BenchError(Exception):
    """A scenario could not be measured: a process died or a phase failed. The message says which."""


#: What a scenario that could not be measured raises: its own errors, and a wait whose deadline passed.
UNMEASURED = (BenchError, TimeoutError)


class Reporting(Protocol):
    """A scenario's helper thread that keeps the error it died of for the scenario to raise."""

    name: str
    error: BaseException | None


def raise_if_failed(label: str, *threads: Reporting | None) -> None:
    """Raise :class:`BenchError` for the first of ``threads`` (started or not yet: None) that failed."""
    for thread in threads:
        if thread is not None and thread.error is not None:
            raise BenchError(f"{label}: {thread.name} failed: {thread.error!r}")


def hold(seconds: float, check: Callable[[], None] | None = None) -> None:
    """Let a scenario phase run for ``seconds`` (a measurement window, not a wait for an event)."""
    end = time.monotonic() + seconds
    while (remaining := end - time.monotonic()) > 0:
        if check is not None:
            check()
        time.sleep(min(0.2, remaining))  # pacing the scenario's timeline


@dataclass(frozen=True)
class Options:
    """Sizes of every scenario; ``--quick`` swaps in :meth:`quick`'s."""

    ticks: int = 200_000
    symbols: int = 50
    partitions: int = 8
    model: str = "linear"
    repeat: int = 1
    throughput_rounds: int = 3
    """Rounds of the throughput scenario (``--throughput-rounds``; ``--repeat`` sets them too): this VM's speed drifts
    by ±15% over minutes, so worker / plain is judged on the median of the rounds' ratios, each round's pair drained
    next to each other."""
    scaleout_rounds: int = 3
    """Rounds of the scale-out scenario (``--scaleout-rounds``; ``--repeat`` sets them too): one pair of drains
    read 1.33 in one full run and 1.53-1.73 in pairs minutes later, so 2w / 1w is judged on the median of the
    rounds' ratios, each round's two drains next to each other."""
    peers_rounds: int = 2
    """Rounds of the peers scenario (``--peers-rounds``; ``--repeat`` sets them too): one round's ratios carry the
    machine's drift between two drains, so a view is judged on the median of two rounds or more."""
    rates: tuple[float, ...] = (200.0, 500.0, 1000.0)
    latency_seconds: float = 20.0
    latency_warmup_s: float = 2.0
    tap_fetch_wait_ms: int = 5
    feed_linger_ms: int = 5
    """Linger of the latency scenario's paced feed: the caller's producer, not a tickcast setting."""
    latency_topologies: tuple[str, ...] = ()
    """Where the latency scenario's processes run (``bench.topology``; none given: :func:`bench.topology.default`);
    the first one feeds the charts."""
    latency_rounds: int = 3
    """Rounds of the latency scenario at the targets' rate (500/s; the other rates run once): each measures every
    topology and processor, in alternating order, and the targets read the median round."""
    rebalance_rate: float = 300.0
    rebalance_steady_s: float = 8.0
    rebalance_settle_s: float = 8.0
    memory_symbols: tuple[int, ...] = (1_000, 10_000)
    memory_ticks_per_symbol: int = 20
    model_ticks: int = 50_000
    horizon_memory_ticks: int = 300_000
    models_through_worker: bool = False
    worker_model_ticks: int = 20_000
    profile: bool = False
    profile_rate: int = 200
    scaling_workers: tuple[int, ...] = (1, 2, 3, 4)
    next_tick: bool = True
    """Processes run issue 18's target configuration (:data:`NEXT_TICK_ENV`), the one its targets name; False:
    the services' defaults (``--defaults``)."""
    processor_env: tuple[tuple[str, str], ...] = ()
    """``TICKCAST_*`` settings given to every worker and plain loop (``--set``), after the configuration's."""
    latency_profile: bool = True
    """The latency scenario's processes run :data:`LATENCY_PROFILE_ENV` (``--latency-defaults``: the defaults)."""

    def settings(self, scenario: str = "") -> dict[str, str]:
        """The ``TICKCAST_*`` settings of every worker and plain loop of ``scenario``: the configuration's, the
        latency profile (the latency scenario only), then ``--set``.

        >>> Options(next_tick=False, processor_env=(("TICKCAST_LINGER_MS", "3"),)).settings("latency")
        {'TICKCAST_FETCH_MAX_WAIT_MS': '5', 'TICKCAST_LINGER_MS': '3'}
        >>> Options(next_tick=False).settings("throughput")
        {}
        >>> Options().settings("throughput") == NEXT_TICK_ENV
        True
        """
        profile = LATENCY_PROFILE_ENV if scenario == "latency" and self.latency_profile else {}
        return {**(NEXT_TICK_ENV if self.next_tick else {}), **profile, **dict(self.processor_env)}

    def configuration(self, scenario: str = "") -> dict[str, str] | str:
        """What the processes ran, for a result's ``inputs``: the defaults, or the settings that differ."""
        return self.settings(scenario) or "defaults"

    def drain_inputs(self) -> dict[str, Any]:
        """The sizes of a backlog drain (throughput, scale-out), for a result's ``inputs``."""
        return {
            "backlog_ticks": self.ticks,
            "symbols": self.symbols,
            "partitions": self.partitions,
            "model": self.model,
            "repeat": self.repeat,
            "throughput_rounds": self.throughput_rounds,
            "configuration": self.configuration(),
        }

    def quick(self) -> Options:
        return replace(
            self,
            ticks=5_000,
            rates=(500.0,),
            latency_seconds=4.0,
            latency_warmup_s=1.0,
            rebalance_steady_s=3.0,
            rebalance_settle_s=3.0,
            memory_symbols=(200, 1_000),
            model_ticks=3_000,
            worker_model_ticks=2_000,
            scaling_workers=(1, 2),
            horizon_memory_ticks=30_000,
            peers_rounds=1,
            latency_rounds=1,
            throughput_rounds=1,
            scaleout_rounds=1,
        )


#: The configuration issue 18's speed targets name: one next-tick horizon, no interval, no challenger, and no
#: drift detector (model governance states its own cost against this).
NEXT_TICK_ENV = {
    "TICKCAST_HORIZONS": "1t",
    "TICKCAST_INTERVAL_COVERAGE": "0",
    "TICKCAST_CHALLENGERS": "",
    "TICKCAST_DRIFT_DETECTOR": "off",
}

#: Issue 18's latency profile (README, "Latency"): the worker's two waits on the way of a tick. On Tansu, which
#: holds a fetch for its whole wait, the default 20 ms fetch wait costs ~8 ms of p99 per hop and the 5 ms linger
#: ~4 ms more; with both shorter the first-10-s p99 at 500/s fell from ~30 to ~19 ms on this host (HISTORY,
#: 2026-12-03). Not the defaults: on Apache Kafka the fetch wait adds no latency while ticks flow and only sets
#: how often an idle worker asks, and a shorter linger means more, smaller produce requests.
LATENCY_PROFILE_ENV = {"TICKCAST_FETCH_MAX_WAIT_MS": "5", "TICKCAST_LINGER_MS": "1"}


@dataclass
class Context:
    """What a scenario gets: the bench broker, where to put logs, and the options."""

    bootstrap_servers: str
    broker_pid: int
    work_dir: Path
    options: Options

    def pipeline(self, label: str, model: str | None = None, snapshots: bool = False, scenario: str = "") -> Pipeline:
        """A private pipeline for one run, its topics created: fresh topics and group, logs in their own folder.

        Workers checkpoint their state (as in production) only with ``snapshots``; the plain loop has no
        state to save. Its processes run :meth:`Options.settings` of ``scenario``.
        """
        unique = new_unique()
        pipeline = Pipeline(
            bootstrap_servers=self.bootstrap_servers,
            unique=unique,
            log_dir=self.work_dir / f"{label}-{unique}",
            partitions=self.options.partitions,
            model=model or self.options.model,
            extra_env={
                **({"TICKCAST_SNAPSHOT_KEY": BENCH_SNAPSHOT_KEY} if snapshots else {}),
                **self.options.settings(scenario),
            },
            group_prefix=f"bench-{label}",
            worker_prefix="worker",
        )
        pipeline.create_topics(TOPIC_CONFIG)
        return pipeline


@dataclass
class Row:
    """One line of the results table; ``passed`` is None for rows without a target."""

    metric: str
    value: float | None
    unit: str
    target: str | None = None
    passed: bool | None = None


def at_least(metric: str, value: float | None, unit: str, threshold: float) -> Row:
    return Row(metric, value, unit, f">= {threshold:g}", None if value is None else value >= threshold)


def at_most(metric: str, value: float | None, unit: str, threshold: float) -> Row:
    return Row(metric, value, unit, f"<= {threshold:g}", None if value is None else value <= threshold)


@dataclass
class ScenarioResult:
    name: str
    title: str
    inputs: dict[str, Any]
    metrics: dict[str, Any]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Scenario = Callable[[Context], ScenarioResult]


def timed(run: Scenario, context: Context) -> ScenarioResult:
    """Run a scenario, stamping its duration and the load average around it (the machine may be shared)."""
    before = load_average()
    started = time.monotonic()
    result = run(context)
    result.seconds = round(time.monotonic() - started, 1)
    result.load_before, result.load_after = before, load_average()
    return result


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)
