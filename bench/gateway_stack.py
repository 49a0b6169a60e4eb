"""One measured phase's own stack for ``bench.gateway``: a fresh broker, topics, workers, paced feed and gateway(s).

Each phase gets one so that none inherits what an earlier phase stored in the broker (why, and the timeline:
:mod:`bench.gateway_plan`). Built from the harness the tests use (:mod:`tickcast.testing`): the embedded
broker, :class:`~tickcast.testing.pipeline.Pipeline` and :class:`~tickcast.testing.gateway.GatewayProcess`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from bench.cgroups import CpuGroups
from bench.core import hold
from bench.feeds import PacedFeed
from bench.gateway_load import CpuMeter, load_average
from bench.gateway_plan import wait_before_lead
from bench.gateway_topology import SHARED, cpus_of, pin, split_cpus
from tickcast.broker.embedded import EmbeddedBroker
from tickcast.testing.gateway import GatewayProcess
from tickcast.testing.pipeline import Pipeline, new_unique, wait_for_assignment
from tickcast.testing.waiting import wait_for


@dataclass(frozen=True)
class StackOptions:
    """What every stack of a run is built with."""

    rate: float
    symbols: int
    workers: int
    window_at_s: float
    gateway_env: dict[str, str] = field(default_factory=dict)
    baseline_src: str = ""
    baseline_env: dict[str, str] = field(default_factory=dict)
    cpu_requests: dict[str, int] = field(default_factory=dict)
    """role -> millicpu (``--cpu-requests``); empty: every process in the root cgroup."""


class Stack:
    """Broker, pipeline, feed and the gateways ``sides`` (``new``, ``baseline``) of one phase, started on
    ``with`` (the feed last, after every gateway is ready) and stopped on leaving it.

    A phase calls :meth:`lead_in` when its load is about to start, then :meth:`open_window` and
    :meth:`close_window` around its measurement; :meth:`record` says what the broker did meanwhile.
    """

    def __init__(
        self, options: StackOptions, sides: tuple[str, ...], log_dir: Path, tag: str, topology: str = SHARED
    ) -> None:
        self.options = options
        self.topology = topology
        self._everywhere = frozenset(os.sched_getaffinity(0))
        # split: the gateway(s) on the last core, the rest of the bench (and all it starts) on the others.
        self._others, self._gateway_cpus = (
            (self._everywhere, self._everywhere) if topology == SHARED else split_cpus(self._everywhere)
        )
        self.sides = sides
        self.log_dir = log_dir
        self.groups = CpuGroups(tag=f"{os.getpid()}-{tag}")
        self.broker = EmbeddedBroker(log_file=log_dir / "broker.log")
        self.pipeline: Pipeline | None = None
        self.feed: PacedFeed | None = None
        self.gateways: dict[str, GatewayProcess] = {}
        self.feed_started = 0.0
        self._started = time.monotonic()
        self._meters: dict[str, CpuMeter] = {}
        self._facts: dict[str, Any] = {}

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        options = self.options
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.topology != SHARED:
            # Before any process starts: each one inherits this mask (the feed thread, wrk, the SSE loads too).
            pin(os.getpid(), self._others)
        self.broker.start()
        self.pipeline = pipeline = Pipeline(self.broker.bootstrap_servers, new_unique(), self.log_dir)
        pipeline.create_topics()
        wait_for_assignment(pipeline, pipeline.start_workers(options.workers), timeout_s=90)
        for side in self.sides:
            if side == "baseline":
                env = {**pipeline.env(), "PYTHONPATH": options.baseline_src, **options.baseline_env}
            else:
                env = {**pipeline.env(), **options.gateway_env}
            self.gateways[side] = GatewayProcess(env, self.log_dir / f"gateway-{side}.log").start()
        self._place()
        self._pin_gateways()
        self._facts["setup_s"] = round(time.monotonic() - self._started, 1)
        self.feed = PacedFeed(pipeline, options.rate, options.symbols)
        self.feed.start()
        self.feed_started = time.monotonic()
        self._meters["since_feed"] = CpuMeter(self._broker_pid()).start()
        for gateway in self.gateways.values():
            wait_for(
                partial(knows_all, gateway, options.symbols),
                60,
                "every symbol at the gateway",
                diagnostics=gateway.log_tail,
            )
        self._facts["symbols_known_after_feed_s"] = round(time.monotonic() - self.feed_started, 1)

    def _broker_pid(self) -> int:
        if self.broker.pid is None:
            raise RuntimeError("the stack's broker is not running")
        return self.broker.pid

    def _place(self) -> None:
        """Each process in the cgroup of its role (``--cpu-requests``), a group per worker as a pod each."""
        if self.pipeline is None:
            return
        pids = {
            "gateway": [g.process.pid for side, g in self.gateways.items() if side == "new" and g.process],
            "baseline": [g.process.pid for side, g in self.gateways.items() if side == "baseline" and g.process],
            "broker": [self._broker_pid()],
        }
        for role, millicpu in self.options.cpu_requests.items():
            if role == "workers":
                for number, worker in enumerate(self.pipeline.workers, start=1):
                    self.groups.place(f"worker{number}", millicpu, [worker.process.pid])
            elif pids[role]:
                self.groups.place(role, millicpu, pids[role])

    def _pin_gateways(self) -> None:
        """split: every thread of each gateway on the gateway's core (again at the window: threads it started
        meanwhile inherit the mask anyway, so this only makes sure)."""
        if self.topology == SHARED:
            return
        for gateway in self.gateways.values():
            if gateway.process is not None:
                pin(gateway.process.pid, self._gateway_cpus)

    def placement(self) -> dict[str, Any]:
        """The topology and the cores each process could run on, read back from the kernel."""
        seen = {f"gateway_{side}": cpus_of(g.process.pid) for side, g in self.gateways.items() if g.process is not None}
        if self.broker.pid is not None:
            seen["broker"] = cpus_of(self.broker.pid)
        if self.pipeline is not None and self.pipeline.workers:
            seen["worker1"] = cpus_of(self.pipeline.workers[0].process.pid)
        seen["bench_feed_loads"] = sorted(os.sched_getaffinity(0))
        return {"name": self.topology, "cpus_seen_at_window": seen}

    @property
    def cpu_requests(self) -> dict[str, Any] | str:
        return self.groups.placed or "none: every process in the root cgroup"

    def lead_in(self, lead_s: float) -> None:
        """Wait until ``lead_s`` seconds before this stack's window is due (same offset after the feed's start
        in every phase), so a load started now opens its window on time."""
        wait = wait_before_lead(self.feed_started, time.monotonic(), self.options.window_at_s, lead_s)
        self._facts["late_s"] = round(max(0.0, -wait), 2)
        hold(max(0.0, wait))

    def open_window(self) -> None:
        self._pin_gateways()
        self._facts["topology"] = self.placement()
        self._facts["window_opened_after_feed_s"] = round(time.monotonic() - self.feed_started, 2)
        self._facts["load_at_window"] = load_average()
        self._meters["window"] = CpuMeter(self._broker_pid()).start()

    def close_window(self) -> None:
        self._facts["broker_cpu_s_window"] = self._meters["window"].stop()
        self._facts["window_closed_after_feed_s"] = round(time.monotonic() - self.feed_started, 2)

    def record(self) -> dict[str, Any]:
        """The broker's CPU seconds in the window and since the feed started, and the timeline as it ran."""
        facts = dict(self._facts)
        if "since_feed" in self._meters and self.broker.pid is not None:
            facts["broker_cpu_s_since_feed"] = self._meters["since_feed"].stop()
        if self.feed is not None:
            facts["ticks_sent"] = self.feed.sent
        facts["window_at_s"] = self.options.window_at_s
        return facts

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.feed is not None:
            self.feed.stop()
        for gateway in self.gateways.values():
            gateway.stop()
        if self.pipeline is not None:
            self.pipeline.stop()
        self.groups.close()
        self.broker.stop()
        if self.topology != SHARED:
            pin(os.getpid(), self._everywhere)


def knows_all(gateway: GatewayProcess, symbols: int) -> bool:
    """Whether ``gateway`` serves ``symbols`` symbols (every one the feed sends), by its open ``/metrics`` (a gateway
    with a clients file wants a token on ``/v1/symbols``)."""
    for line in httpx.get(f"{gateway.url}/metrics", timeout=5).text.splitlines():
        if line.startswith("tickcast_gateway_symbols "):
            return int(float(line.split()[1])) == symbols
    return False
