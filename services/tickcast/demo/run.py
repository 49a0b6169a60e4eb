"""Run the whole pipeline on this machine: embedded broker, N workers, a synthetic feed, a live view."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog
from rich.console import Console

from tickcast.broker.embedded import EmbeddedBroker
from tickcast.common import affinity
from tickcast.common.kafka import ensure_topics, wait_for_broker
from tickcast.common.processes import current_env, free_port, spawn, stop, wait_until
from tickcast.common.records import Tick
from tickcast.common.settings import CommonSettings
from tickcast.demo import (
    DEMO_FEED_LINGER_MS,
    DEMO_PARTITIONS,
    DEMO_TOPOLOGY,
    DEMO_VIEW_FETCH_WAIT_MS,
    DEMO_WORKER_FETCH_WAIT_MS,
    DEMO_WORKER_LINGER_MS,
)
from tickcast.demo.view import LiveStats, live_view
from tickcast.ops.workers import WorkerPool
from tickcast.predictor.snapshot_keys import new_key
from tickcast.producer.publisher import TickPublisher, publish_all
from tickcast.producer.settings import ProducerSettings
from tickcast.producer.synthetic import SyntheticFeed, symbol_names
from tickcast.subscriber.reader import PredictionReader
from tickcast.subscriber.settings import SubscriberSettings

log = structlog.get_logger("tickcast.demo")


#: Gateway settings the demo does not pass on from the shell (see :func:`open_gateway_env`).
GATEWAY_GUARDS = (
    "TICKCAST_GATEWAY_CLIENTS_FILE",
    "TICKCAST_GATEWAY_TLS_CERT_FILE",
    "TICKCAST_GATEWAY_TLS_KEY_FILE",
    "TICKCAST_GATEWAY_TLS_KEY_PASSWORD_FILE",
)


def open_gateway_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` without the gateway's TLS and client-token settings.

    The demo prints a plain ``http://`` dashboard address that opens without a token; a production shell's
    exported TLS or clients file would otherwise make that address wrong or refused.

    >>> open_gateway_env({"TICKCAST_GATEWAY_TLS_CERT_FILE": "/etc/tls.crt", "TICKCAST_MODEL": "linear"})
    {'TICKCAST_MODEL': 'linear'}
    """
    return {name: value for name, value in env.items() if name not in GATEWAY_GUARDS}


#: How long one read of predictions may wait when nothing arrives. A read returns as soon as a record is there
#: (``PredictionReader.poll``), so this only bounds how late the table is redrawn in a quiet moment.
VIEW_POLL_S = 0.05
#: The table is rebuilt this often, not after every read: it sorts the latency window and every symbol's row.
VIEW_RENDER_EVERY_S = 0.25


@dataclass(frozen=True, slots=True)
class DemoOptions:
    seconds: float = 0.0
    workers: int = 2
    symbols: int = 24
    rate: float = 300.0
    seed: int = 42
    model: str = "linear"
    log_dir: Path = Path(".tickcast/demo")
    drain_timeout_s: float = 30.0
    gateway_port: int = 8080
    """Port of the gateway serving the dashboard; 0 picks a free one."""
    feed_linger_ms: int = DEMO_FEED_LINGER_MS
    """The synthetic feed's producer linger: every tick waits up to this long before it is sent."""
    view_fetch_wait_ms: int = DEMO_VIEW_FETCH_WAIT_MS
    """The live view's fetch wait: the embedded broker holds a fetch this long, adding up to it to each latency."""
    worker_fetch_wait_ms: int = DEMO_WORKER_FETCH_WAIT_MS
    """The workers' fetch wait, unless the environment sets ``TICKCAST_FETCH_MAX_WAIT_MS``."""
    worker_linger_ms: int = DEMO_WORKER_LINGER_MS
    """The workers' producer linger, unless the environment sets ``TICKCAST_LINGER_MS``."""
    ready_timeout_s: float = 120.0
    """How long the feed waits for the workers to share every partition before it starts anyway."""
    topology: str = DEMO_TOPOLOGY
    """``split``: the workers on the last core, everything else on the others; ``shared``: all on every core."""
    partitions: int = DEMO_PARTITIONS
    """Partitions of the demo's topics (its own broker's), for every process it starts."""


@dataclass(slots=True)
class DemoResult:
    ticks: int
    predictions: int
    dead_letters: int
    workers: int
    latency_p50_ms: float = float("nan")
    """What the live view showed last while the feed ran: p50 of its latest predictions' latency."""
    latency_p99_ms: float = float("nan")
    to_predicted_p50_ms: float = float("nan")
    """The part of the p50 before the worker's ``predicted_at``: the feed's linger, the broker, the worker's fetch."""
    topology: str = affinity.SHARED
    """Where the processes ran (``split`` asked for on a machine that cannot pin runs ``shared``)."""

    def summary_line(self) -> str:
        """One line for the terminal and for scripts.

        >>> DemoResult(10, 10, 0, 2, 21.04, 40.5, 9.96, "split").summary_line().split(" ")[:4]
        ['ticks=10', 'predictions=10', 'dead_letters=0', 'workers=2']
        >>> DemoResult(10, 10, 0, 2, 21.04, 40.5, 9.96, "split").summary_line().split(" ")[4:]
        ['latency_p50_ms=21.0', 'latency_p99_ms=40.5', 'to_predicted_p50_ms=10.0', 'topology=split']
        """
        return (
            f"ticks={self.ticks} predictions={self.predictions} dead_letters={self.dead_letters} "
            f"workers={self.workers} latency_p50_ms={self.latency_p50_ms:.1f} latency_p99_ms={self.latency_p99_ms:.1f} "
            f"to_predicted_p50_ms={self.to_predicted_p50_ms:.1f} topology={self.topology}"
        )


def run_demo(options: DemoOptions, console: Console | None = None) -> DemoResult:
    """Start everything, stream until ``seconds`` pass (0 = until Ctrl-C), drain, stop everything."""
    console = console or Console()
    options.log_dir.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(log_file=options.log_dir / "broker.log")
    supervisor: WorkerPool | None = None
    stop_feed = threading.Event()
    sent = [0]
    stats = LiveStats()
    feed_thread: threading.Thread | None = None
    reader: PredictionReader | None = None
    gateway: subprocess.Popen[bytes] | None = None
    placement = Placement.of(options.topology)
    try:
        broker.start()
        placement.others(broker.pid)
        common = CommonSettings(bootstrap_servers=broker.bootstrap_servers, partitions=options.partitions)
        ensure_topics(
            wait_for_broker(common),
            [common.ticks_topic, common.predictions_topic, common.dlq_topic],
            common.partitions,
            1,
        )
        env = {
            "TICKCAST_FETCH_MAX_WAIT_MS": str(options.worker_fetch_wait_ms),
            "TICKCAST_LINGER_MS": str(options.worker_linger_ms),
            **current_env(),
            "TICKCAST_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "TICKCAST_PARTITIONS": str(options.partitions),
            "TICKCAST_MODEL": options.model,
            "TICKCAST_LOG_LEVEL": "INFO",
            # Tansu: group joins take ~23 s at librdkafka-like default session timeouts and ~3 s at 6 s.
            "TICKCAST_SESSION_TIMEOUT_S": "6",
            # One key per demo run: the workers trust each other's snapshots and nobody else's.
            "TICKCAST_SNAPSHOT_KEY": new_key(),
        }
        supervisor = WorkerPool(env=env, log_dir=options.log_dir)
        supervisor.scale(options.workers)
        placement.workers(supervisor)
        gateway_port = options.gateway_port or free_port()
        with open(options.log_dir / "gateway.log", "ab") as output:
            gateway = spawn(
                [sys.executable, "-m", "tickcast", "gateway", "--port", str(gateway_port)],
                env=open_gateway_env(env),
                output=output,
            )
        console.print(f"dashboard: [bold]http://127.0.0.1:{gateway_port}/[/bold] (gateway pid {gateway.pid})")
        console.print(
            f"broker {broker.bootstrap_servers} (pid {broker.pid}); {options.workers} workers starting "
            f"(logs in {options.log_dir}); streaming {options.symbols} symbols at {options.rate:.0f} ticks/s"
        )
        reader = PredictionReader(
            SubscriberSettings(
                bootstrap_servers=broker.bootstrap_servers,
                fetch_max_wait_ms=options.view_fetch_wait_ms,
                # As the workers' (above): the embedded broker's group join is ~3 s at 6 s, ~5 s at the default.
                session_timeout_s=6,
            ),
            from_beginning=True,
            dead_letters=True,
        )
        _wait_until_ready(supervisor, reader, stats, common.partitions, options.ready_timeout_s, console)
        placement.workers(supervisor)  # again: threads a worker started before its first pin took hold

        feed = SyntheticFeed(symbol_names(options.symbols), options.seed, lambda: time.time_ns() // 1_000_000)

        def counting() -> Iterator[Tick]:
            for tick in feed:
                yield tick
                sent[0] += 1

        def produce() -> None:
            # The producer lives and dies with this thread, so no client outlives the broker.
            publisher = TickPublisher(
                ProducerSettings(bootstrap_servers=broker.bootstrap_servers, linger_ms=options.feed_linger_ms)
            )
            publish_all(publisher, counting(), rate=options.rate, should_stop=stop_feed.is_set)
            publisher.close()

        feed_thread = threading.Thread(target=produce, name="synthetic-feed", daemon=True)
        started = time.monotonic()
        feed_thread.start()
        with live_view(console, stats.render(0, options.workers, 0.0)) as live:
            try:
                rendered_at = 0.0
                while options.seconds <= 0 or time.monotonic() - started < options.seconds:
                    _consume(reader, stats)
                    if (now := time.monotonic()) - rendered_at >= VIEW_RENDER_EVERY_S:
                        live.update(stats.render(sent[0], len(supervisor.workers), now - started))
                        rendered_at = now
            except KeyboardInterrupt:
                console.print("stopping: finishing the ticks already sent...")
            live_p50, live_p99 = stats.latency_p50_p99()  # the steady state, before the drain's stragglers
            live_to_predicted_p50, _ = stats.to_predicted_p50_p99()
            stop_feed.set()
            feed_thread.join(timeout=30)
            deadline = time.monotonic() + options.drain_timeout_s
            while stats.predictions + stats.dead_letters < sent[0] and time.monotonic() < deadline:
                _consume(reader, stats)
                live.update(stats.render(sent[0], len(supervisor.workers), time.monotonic() - started))
        if stats.predictions + stats.dead_letters < sent[0]:
            console.print(
                f"[yellow]warning: {sent[0] - stats.predictions - stats.dead_letters} ticks had no answer within "
                f"{options.drain_timeout_s:.0f}s of stopping the feed[/yellow]"
            )
        return DemoResult(
            sent[0],
            stats.predictions,
            stats.dead_letters,
            options.workers,
            live_p50,
            live_p99,
            live_to_predicted_p50,
            placement.name,
        )
    finally:
        stop_feed.set()
        if reader is not None:
            reader.close()
        if gateway is not None:
            stop(gateway, grace_s=10)
        if supervisor is not None:
            supervisor.stop_all()
        broker.stop()
        placement.release()


@dataclass
class Placement:
    """Pins the demo's processes as its topology says (:data:`tickcast.demo.DEMO_TOPOLOGY`); a no-op when shared."""

    name: str
    rest: frozenset[int] = frozenset()
    workers_cpus: frozenset[int] = frozenset()
    everywhere: frozenset[int] = frozenset()

    @classmethod
    def of(cls, topology: str) -> Placement:
        if topology not in affinity.TOPOLOGIES:
            raise ValueError(f"unknown topology {topology!r} (one of {', '.join(affinity.TOPOLOGIES)})")
        cpus = affinity.available_cpus()
        if topology == affinity.SHARED or not affinity.supported() or len(cpus) < 2:
            return cls(affinity.SHARED)
        rest, workers_cpus = affinity.split_cpus(cpus)
        placement = cls(topology, rest, workers_cpus, frozenset(cpus))
        # This process first: the gateway and the workers start from it, so they begin on the others' cores too.
        affinity.pin(os.getpid(), rest, descendants=False)
        return placement

    def others(self, pid: int | None) -> None:
        if self.name == affinity.SPLIT and pid is not None:
            affinity.pin(pid, self.rest)

    def workers(self, supervisor: WorkerPool) -> None:
        if self.name == affinity.SPLIT:
            for worker in supervisor.workers:
                affinity.pin(worker.process.pid, self.workers_cpus)

    def release(self) -> None:
        """This process back on every core it had (``run_demo`` may be called by a longer-lived process)."""
        if self.name == affinity.SPLIT:
            affinity.pin(os.getpid(), self.everywhere, descendants=False)


def _wait_until_ready(
    supervisor: WorkerPool,
    reader: PredictionReader,
    stats: LiveStats,
    partitions: int,
    timeout_s: float,
    console: Console,
) -> None:
    """Hold the feed until the workers share every partition and the view has joined its group, so ``seconds``
    counts live streaming, and the latency shown is the pipeline's, not the joins' backlog.

    A slow join only delays the first predictions (the feed's ticks wait in the topic), so past the deadline
    the demo warns and streams anyway; a worker that exits stops the demo with its log's name.
    """
    started = time.monotonic()

    def ready() -> bool:
        _consume(reader, stats)  # the view's group join progresses only while it polls
        return reader.is_assigned() and supervisor.is_split(partitions)

    try:
        wait_until(ready, timeout_s, "the workers to share every partition and the view to join", 0.0)
    except TimeoutError as timeout:
        console.print(f"[yellow]warning: {timeout}; streaming anyway[/yellow]")
        return
    console.print(f"workers ready: {partitions} partitions split in {time.monotonic() - started:.1f}s")


def _consume(reader: PredictionReader, stats: LiveStats) -> None:
    batch = reader.poll(timeout_s=VIEW_POLL_S)
    now_ms = time.time() * 1000  # after the poll: a record is only "received" once poll returns it
    for received in batch:
        if received.prediction is not None:
            stats.add_prediction(received.prediction, now_ms)
        elif received.dead_letter is not None:
            stats.dead_letters += 1
