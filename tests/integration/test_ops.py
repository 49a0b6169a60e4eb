"""Ops tools on the real (embedded) broker: lag of a backlog, `scale` up and down, `autoscale` on a burst."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tickcast.common.processes import spawn, stop
from tickcast.common.topics import partition_for, symbol_key
from tickcast.ops.control import read_status
from tickcast.ops.lag import LagReader, LagReport, fetch_stats
from tickcast.ops.status import SupervisorStatus
from tickcast.producer.publisher import RateLimiter
from tickcast.producer.synthetic import SyntheticFeed, symbol_names
from tickcast.testing.pipeline import Pipeline
from tickcast.testing.stats import Assignment, split_once, wait_for_split
from tickcast.testing.waiting import wait_for

pytestmark = pytest.mark.integration

#: Tansu workaround: it answers ListOffsets "latest" with the last *batch's* base offset + 1, so end offsets
#: (and lag) are exact only when every record is its own batch: no lingering, one message per batch.
ONE_RECORD_PER_BATCH = {"linger.ms": 0, "batch.num.messages": 1}


@dataclass
class Ops:
    """The ops commands of one test, run as child processes with the pipeline's settings; stops what it starts."""

    pipeline: Pipeline
    state_dir: Path
    out_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    worker_pids: set[int] = field(default_factory=set)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.out_dir / f"{name}.out", "ab") as output:
            process = spawn([sys.executable, "-m", "tickcast", *args], env=self.pipeline.env(), output=output)
        self.processes[name] = process
        return process

    def run(self, *args: str, timeout_s: float = 150.0) -> subprocess.CompletedProcess[str]:
        """Run a command to completion (``lag``, ``scale``)."""
        return subprocess.run(
            [sys.executable, "-m", "tickcast", *args],
            env=self.pipeline.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def output(self, name: str, tail: int | None = 6000) -> str:
        path = self.out_dir / f"{name}.out"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text[-tail:] if tail else text

    def status(self) -> SupervisorStatus | None:
        status = read_status(self.state_dir)
        if status is not None:
            self.worker_pids.update(w.pid for w in status.workers)
        return status

    def diagnostics(self) -> str:
        logs = "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
            for p in sorted((self.state_dir / "logs").glob("*.log"))
        )
        outputs = "\n".join(f"--- {name} output\n{self.output(name)}" for name in self.processes)
        return f"status: {self.status()}\n{outputs}\n{logs}"

    def stop_all(self) -> None:
        # The autoscaler first, so it does not scale a supervisor that is shutting down.
        for name in sorted(self.processes, key=lambda n: n != "autoscale"):
            stop(self.processes[name], grace_s=90)

        def leftover() -> list[int]:
            return [pid for pid in self.worker_pids if _alive(pid)]

        wait_for(
            lambda: not leftover(),
            30,
            "the workers to exit with their supervisor",
            diagnostics=lambda: f"workers {leftover()} outlived their supervisor",
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def ops(pipeline: Pipeline, tmp_path: Path) -> Iterator[Ops]:
    running = Ops(pipeline, tmp_path / "supervisor", tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def owners(ops: Ops, count: int) -> Assignment | None:
    """worker -> partitions once exactly ``count`` workers run and all answer on ``/stats``."""
    status = ops.status()
    if status is None or not status.converged(count):
        return None
    stats = {w.id: fetch_stats(w.stats_url) for w in status.workers}
    if any(s is None for s in stats.values()):
        return None
    return {wid: list(s["assigned_partitions"]) for wid, s in stats.items() if s is not None}


def split_among(ops: Ops, count: int) -> bool:
    """Exactly ``count`` workers run and share every partition, each owning some."""
    owned = owners(ops, count)
    return owned is not None and split_once(owned, ops.pipeline.partitions)


def wait_for_workers(ops: Ops, count: int, timeout_s: float = 120.0) -> Assignment:
    return wait_for_split(
        lambda: owners(ops, count), ops.pipeline.partitions, f"{count} workers", timeout_s, diagnostics=ops.diagnostics
    )


@dataclass
class Feed:
    """Publishes synthetic ticks at a steady rate in a thread; counts what each partition received."""

    pipeline: Pipeline
    rate: float
    overrides: dict[str, object] = field(default_factory=dict)
    per_partition: Counter[int] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _undelivered: int = -1

    def start(self) -> Feed:
        self._thread = threading.Thread(target=self._run, name="test-feed", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        publisher = self.pipeline.publisher(**self.overrides)
        limiter = RateLimiter(self.rate)
        feed = SyntheticFeed(symbol_names(24), seed=9, clock_ms=lambda: time.time_ns() // 1_000_000)
        try:
            for tick in feed:
                if self._stop.is_set():
                    break
                limiter.wait()
                publisher.publish(tick)
                self.per_partition[partition_for(symbol_key(tick.symbol), self.pipeline.partitions)] += 1
        finally:
            self._undelivered = publisher.close()

    def stop(self) -> int:
        """Stop publishing; return how many ticks were sent (all delivered, or the test fails)."""
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the feed thread did not stop"
        assert self._undelivered == 0, f"{self._undelivered} ticks were not delivered"
        return sum(self.per_partition.values())


def test_lag_counts_a_backlog_per_partition_and_reaches_zero_once_a_worker_drains_it(
    pipeline: Pipeline, ops: Ops
) -> None:
    publisher = pipeline.publisher(**ONE_RECORD_PER_BATCH)
    ticks = SyntheticFeed(symbol_names(24), seed=11, clock_ms=lambda: time.time_ns() // 1_000_000).take(1200)
    for tick in ticks:
        publisher.publish(tick)
    assert publisher.close() == 0
    produced = Counter(partition_for(symbol_key(t.symbol), pipeline.partitions) for t in ticks)

    group = pipeline.env()["TICKCAST_GROUP_ID"]
    reader = LagReader(pipeline.kafka, pipeline.ticks_topic, group)
    try:
        report = reader.read()
        assert {p.partition: p.lag for p in report.partitions} == {p: produced[p] for p in range(pipeline.partitions)}
        assert all(p.committed is None for p in report.partitions), "nobody consumed yet, yet offsets are committed"
        assert report.total_lag == len(ticks)

        cli = ops.run("lag", "--json", timeout_s=60)
        assert cli.returncode == 0, cli.stderr
        printed = json.loads(cli.stdout.strip().splitlines()[-1])
        assert printed["total_lag"] == len(ticks) and printed["group"] == group
        assert [p["lag"] for p in printed["partitions"]] == [produced[p] for p in range(pipeline.partitions)]

        (worker,) = pipeline.start_workers(1)
        url = f"http://127.0.0.1:{worker.web_port}/stats"
        last: list[LagReport] = []

        def drained() -> bool:
            last[:] = [reader.read([url])]
            return last[0].total_lag == 0 and all(p.committed == p.end for p in last[0].partitions)

        wait_for(
            drained,
            120,
            "the lag falling to 0 after a worker started",
            diagnostics=lambda: f"{last}\n{pipeline.worker_logs()}",
        )
        assert last[0].owners_known and {p.owner for p in last[0].partitions} == {worker.worker_id}
        assert last[0].total_position == len(ticks)
    finally:
        reader.close()


def test_scale_up_and_down_changes_the_group_members_and_every_tick_is_answered(pipeline: Pipeline, ops: Ops) -> None:
    state = str(ops.state_dir)
    ops.start("supervise", "supervise", "--workers", "1", "--state-dir", state)
    first = wait_for_workers(ops, 1)
    feed = Feed(pipeline, rate=80).start()

    up = ops.run("scale", "3", "--state-dir", state)
    assert up.returncode == 0, f"{up.stderr}\n{ops.diagnostics()}"
    assert "desired 3, running 3, ready 3" in up.stdout
    three = wait_for_workers(ops, 3)
    assert set(first) < set(three)

    down = ops.run("scale", "1", "--state-dir", state)
    assert down.returncode == 0, f"{down.stderr}\n{ops.diagnostics()}"
    one = wait_for_workers(ops, 1)
    assert set(one) == set(first), "scaling down should stop the newest workers and keep the first"
    sent = feed.stop()

    # At least once across rebalances: every tick has a prediction; a few may have two.
    expected = {(p, offset) for p, n in feed.per_partition.items() for offset in range(n)}
    answered: set[tuple[int, int]] = set()
    reader = pipeline.reader()

    def all_answered() -> bool:
        for record in reader.poll(timeout_s=0.5):
            if record.prediction is not None:
                answered.add((record.prediction.source_partition, record.prediction.source_offset))
        return expected <= answered

    def unanswered() -> str:
        missing = sorted(expected - answered)
        return f"{len(missing)} of {sent} ticks got no prediction, e.g. {missing[:10]}\n{ops.diagnostics()}"

    try:
        wait_for(all_answered, 120, f"a prediction for each of {sent} ticks", diagnostics=unanswered, interval_s=0)
    finally:
        reader.close()


@pytest.mark.long
def action_of(decision: str) -> str:
    """The action of a decision line (``format_decision``).

    >>> action_of("2024-01-02T03:04:05+00:00 hold 2->2 lag=40 processing=600/s: hold at 2: would scale up to 3")
    'hold'
    """
    return decision.split()[1]


def test_autoscale_scales_up_on_a_burst_and_back_down_after_it(pipeline: Pipeline, ops: Ops, tmp_path: Path) -> None:
    # No calendar windows (the test may run in market hours); a low per-worker rate so a modest burst needs
    # more than the --max of 3, and short windows and cooldowns so the test takes about a minute.
    config = tmp_path / "autoscale.toml"
    config.write_text("[dynamic]\nper_worker_rate = 60.0\ndrain_target_s = 10.0\ntrend_window_s = 6.0\n")
    state = str(ops.state_dir)
    ops.start("supervise", "supervise", "--workers", "1", "--state-dir", state)
    # Started together to save a few seconds: the autoscaler waits (logging no_supervisor) until one runs.
    ops.start(
        "autoscale",
        *("autoscale", "--schedule", str(config), "--state-dir", state, "--interval", "1"),
        *("--up-cooldown", "2", "--down-cooldown", "6", "--max", "3"),
    )
    wait_for_workers(ops, 1)
    wait_for(
        lambda: "hold at 1" in ops.output("autoscale", tail=None),
        60,
        "a first decision (hold at 1)",
        diagnostics=ops.diagnostics,
    )

    # One record per batch keeps the lag exact on Tansu, so a rebalance pause reads as growing lag, not as 0.
    feed = Feed(pipeline, rate=250, overrides=dict(ONE_RECORD_PER_BATCH)).start()
    try:
        wait_for(
            lambda: split_among(ops, 3), 120, "a scale-up to 3 workers during the burst", diagnostics=ops.diagnostics
        )
    finally:
        feed.stop()
    burst_over = datetime.now(UTC)

    wait_for(lambda: split_among(ops, 1), 120, "a scale-down to 1 worker after the burst", diagnostics=ops.diagnostics)
    decisions = [line for line in ops.output("autoscale", tail=None).splitlines() if line[:4].isdigit()]
    # By the action, the second field ('<time> hold 1->1 ...'): a hold's reason may say "would scale up".
    ups = [line for line in decisions if action_of(line) == "up"]
    downs = [line for line in decisions if action_of(line) == "down"]
    text = "\n".join(decisions)
    assert ups and any("->3 " in line for line in ups) and "capped at max 3 of --max" in text, text
    assert downs and " down 3->" in downs[0], text
    after = decisions[decisions.index(downs[0]) :]
    assert not [line for line in after if action_of(line) == "up"], f"scaled up after the burst:\n{text}"
    assert datetime.fromisoformat(downs[0].split()[0]) >= burst_over.replace(microsecond=0), (
        f"scaled down before the burst ended at {burst_over.isoformat()}:\n{text}"
    )
