"""What every scenario shares: private pipelines on the bench broker, processes, CPU sampling, feeds and taps.

Each run gets fresh topics and a fresh consumer group (``bench-<unique>``), so runs never see each
other's records or offsets. Every process is started through :mod:`tickcast.common.processes` (it dies
with us) and stopped by PID in a ``finally``.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE
from tickcast.common.kafka import QUIET, ensure_topics, wait_for_broker
from tickcast.common.processes import spawn, stop
from tickcast.common.records import Tick
from tickcast.common.topics import partition_for, symbol_key
from tickcast.ops.workers import WorkerPool, WorkerProcess
from tickcast.producer.publisher import RateLimiter, TickPublisher
from tickcast.producer.settings import ProducerSettings
from tickcast.producer.synthetic import SyntheticFeed, make_dynamics, symbol_names

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Tansu workaround shared with the tests and the demo: group joins take ~23 s at longer session timeouts.
SESSION_TIMEOUT_S = 6.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A scenario could not be measured: a deadline passed or a process died. The message says which."""


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def wait_for(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    interval_s: float = 0.1,
    check: Callable[[], None] | None = None,
) -> float:
    """Poll ``condition`` until true (``check`` may raise, e.g. for a dead process); return the seconds waited."""
    started = time.monotonic()
    deadline = started + timeout_s
    while not condition():
        if check is not None:
            check()
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)  # polling interval of a deadline loop
    return time.monotonic() - started


def hold(seconds: float, check: Callable[[], None] | None = None) -> None:
    """Let a scenario phase run for ``seconds`` (a measurement window, not a wait for an event)."""
    end = time.monotonic() + seconds
    while (remaining := end - time.monotonic()) > 0:
        if check is not None:
            check()
        time.sleep(min(0.2, remaining))  # pacing the scenario's timeline


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads) from /proc; None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the fields after its closing paren are fixed.
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_bytes(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS in /proc/{pid}/status")


class CpuSampler:
    """Samples the CPU seconds of labelled processes every ``interval_s`` in a background thread.

    Samples are (wall time, CPU seconds), so the CPU a process used in any window, such as first to last
    prediction, can be interpolated afterwards.
    """

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.pids: dict[str, int] = {}
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def watch(self, label: str, pid: int) -> None:
        self.pids[label] = pid
        self.samples.setdefault(label, [])
        self._sample_one(label, pid)

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for label, pid in list(self.pids.items()):
            self._sample_one(label, pid)

    def _sample_one(self, label: str, pid: int) -> None:
        value = cpu_seconds(pid)
        if value is not None:
            self.samples[label].append((time.time(), value))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):  # sampling period
            for label, pid in list(self.pids.items()):
                self._sample_one(label, pid)

    def cpu_between(self, label: str, t0: float, t1: float) -> float:
        """CPU seconds ``label`` used between wall times t0 and t1 (linear between samples)."""
        series = self.samples.get(label, [])
        if len(series) < 2:
            return 0.0
        return max(0.0, _interpolate(series, t1) - _interpolate(series, t0))

    def utilisation(self, label: str, t0: float, t1: float) -> float:
        """Cores used on average in [t0, t1] (1.0 = one core fully busy)."""
        return self.cpu_between(label, t0, t1) / (t1 - t0) if t1 > t0 else 0.0


def _interpolate(series: list[tuple[float, float]], t: float) -> float:
    if t <= series[0][0]:
        return series[0][1]
    for (ta, ca), (tb, cb) in itertools.pairwise(series):
        if ta <= t <= tb:
            return ca + (cb - ca) * ((t - ta) / (tb - ta) if tb > ta else 0.0)
    return series[-1][1]


#: Workers save state only when they have a key; a fixed one is enough for a private bench broker.
BENCH_SNAPSHOT_KEY = "bench-snapshot-key"


@dataclass
class Pipeline:
    """One private pipeline on the bench broker: its own topics, group and worker logs."""

    bootstrap_servers: str
    work_dir: Path
    scenario: str
    partitions: int = 8
    model: str = "linear"
    snapshot_key: str | None = None
    """Workers checkpoint their state (as in production) only with a key; the plain loop has no state to save."""
    unique: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def ticks_topic(self) -> str:
        return f"bench-ticks-{self.unique}"

    @property
    def predictions_topic(self) -> str:
        return f"bench-predictions-{self.unique}"

    @property
    def dlq_topic(self) -> str:
        return f"bench-ticks-{self.unique}.dlq"

    @property
    def group_id(self) -> str:
        return f"bench-{self.scenario}-{self.unique}"

    @property
    def log_dir(self) -> Path:
        return self.work_dir / f"{self.scenario}-{self.unique}"

    def settings_kwargs(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "ticks_topic": self.ticks_topic,
            "predictions_topic": self.predictions_topic,
            "dlq_topic": self.dlq_topic,
            "partitions": self.partitions,
        }

    def env(self) -> dict[str, str]:
        """Environment of workers and the plain loop: the same ``TICKCAST_*`` settings for both."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("TICKCAST_", "F_", "FAUST_"))}
        python_path = os.pathsep.join(p for p in (str(REPO_ROOT), inherited.get("PYTHONPATH", "")) if p)
        return {
            **inherited,
            "PYTHONPATH": python_path,
            "TICKCAST_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "TICKCAST_TICKS_TOPIC": self.ticks_topic,
            "TICKCAST_PREDICTIONS_TOPIC": self.predictions_topic,
            "TICKCAST_DLQ_TOPIC": self.dlq_topic,
            "TICKCAST_PARTITIONS": str(self.partitions),
            "TICKCAST_GROUP_ID": self.group_id,
            "TICKCAST_MODEL": self.model,
            "TICKCAST_LOG_LEVEL": "INFO",
            "TICKCAST_SESSION_TIMEOUT_S": str(SESSION_TIMEOUT_S),
            # Faust keeps a data directory per app; keep it out of the working tree. The worker may set
            # it from TICKCAST_DATA_DIR; F_DATADIR is Faust's own default when it does not.
            "TICKCAST_DATA_DIR": str(self.log_dir / "data"),
            "F_DATADIR": str(self.log_dir / "{conf.name}-data"),
            **({"TICKCAST_SNAPSHOT_KEY": self.snapshot_key} if self.snapshot_key else {}),
        }

    def create_topics(self) -> None:
        admin = wait_for_broker(self.bootstrap_servers, timeout_s=20)
        ensure_topics(admin, [self.ticks_topic, self.predictions_topic, self.dlq_topic], self.partitions, 1)

    def publisher(self, **overrides: Any) -> TickPublisher:
        linger = overrides.pop("linger.ms", 20)
        # librdkafka's info-level chatter on close (e.g. BGQUEUE purges) would interleave with the results.
        overrides.setdefault("log_level", 4)
        return TickPublisher(ProducerSettings(**self.settings_kwargs(), linger_ms=linger), **overrides)


# --- processors: what turns ticks into predictions (tickcast workers, or the plain loop) -------------


class Processor(ABC):
    """One or more processes in one consumer group that answer the pipeline's ticks."""

    kind: str

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    @abstractmethod
    def start(self, count: int = 1) -> None: ...

    @abstractmethod
    def assignment(self) -> dict[str, list[int]] | None:
        """Process id -> assigned partitions; None while some process does not answer yet."""

    @abstractmethod
    def handled(self) -> int | None:
        """Ticks handled so far by all processes; None while some process does not answer."""

    @abstractmethod
    def pids(self) -> dict[str, int]: ...

    @abstractmethod
    def check_alive(self) -> None:
        """Raise :class:`BenchError` with the logs if a process exited."""

    @abstractmethod
    def stop(self) -> None: ...

    def logs(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {path.name} (last {chars} chars)\n{path.read_text(errors='replace')[-chars:]}"
            for path in sorted(self.pipeline.log_dir.glob("*.log"))
        )

    def wait_ready(self, processes: int, timeout_s: float = 90.0) -> float:
        """Wait until every partition is owned by exactly one of ``processes`` processes, each owning some."""
        partitions = list(range(self.pipeline.partitions))
        seen: list[dict[str, list[int]] | None] = [None]

        def split() -> bool:
            current = self.assignment()
            seen[0] = current
            if current is None or len(current) != processes:
                return False
            owned = sorted(p for parts in current.values() for p in parts)
            return owned == partitions and all(parts for parts in current.values())

        try:
            return wait_for(
                split, timeout_s, f"{processes} {self.kind} process(es) to split the partitions", 0.2, self.check_alive
            )
        except BenchError as exc:
            raise BenchError(f"{exc}; last seen {seen[0]}") from exc


class WorkerSet(Processor):
    """``python -m tickcast worker`` children via :class:`WorkerPool`; progress from each one's /stats."""

    kind = "worker"

    def __init__(self, pipeline: Pipeline, extra_env: dict[str, str] | None = None) -> None:
        super().__init__(pipeline)
        self.supervisor = WorkerPool(
            env={**pipeline.env(), **(extra_env or {})}, log_dir=pipeline.log_dir, name_prefix="worker"
        )
        self._last_handled: dict[str, int] = {}

    @property
    def workers(self) -> list[WorkerProcess]:
        return self.supervisor.workers

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            self.supervisor.start_one()

    def stats(self, worker: WorkerProcess) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/stats", timeout=2) as response:
                loaded: dict[str, Any] = json.loads(response.read())
                return loaded
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return None

    def assignment(self) -> dict[str, list[int]] | None:
        result: dict[str, list[int]] = {}
        for worker in self.workers:
            stats = self.stats(worker)
            if stats is None:
                return None
            result[worker.worker_id] = list(stats.get("assigned_partitions", []))
        return result

    def handled(self) -> int | None:
        for worker in self.workers:
            stats = self.stats(worker)
            if stats is not None:
                self._last_handled[worker.worker_id] = int(stats.get("ticks_in", 0))
        # A killed worker's last count stays in the sum: its ticks were handled (and maybe replayed).
        return sum(self._last_handled.values()) if self._last_handled else None

    def pids(self) -> dict[str, int]:
        return {w.worker_id: w.process.pid for w in self.workers}

    def check_alive(self) -> None:
        for worker in self.workers:
            if not worker.alive:
                raise BenchError(f"worker {worker.worker_id} exited with code {worker.process.returncode}")

    def kill(self, worker: WorkerProcess) -> None:
        """SIGKILL by PID (no goodbye to the group), then forget it."""
        worker.process.kill()
        worker.process.wait(timeout=10)
        self.supervisor.workers.remove(worker)

    def stop(self) -> None:
        self.supervisor.stop_all(grace_s=15.0)


class PlainLoopProcess(Processor):
    """``python -m bench.plain_loop``: one confluent-kafka consume → handle → produce process."""

    kind = "plain"

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(pipeline)
        self.status_file = pipeline.log_dir / "plain-status.json"
        self.process: Any = None
        self._output: Any = None

    def start(self, count: int = 1) -> None:
        if count != 1 or self.process is not None:
            raise BenchError("the plain loop runs as exactly one process")
        self.pipeline.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**self.pipeline.env(), "TICKCAST_WORKER_ID": "plain-1"}
        self._output = open(self.pipeline.log_dir / "plain-1.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = spawn(
            [sys.executable, "-m", "bench.plain_loop", "--status-file", str(self.status_file)],
            env=env,
            output=self._output,
        )

    def _status(self) -> dict[str, Any] | None:
        try:
            loaded: dict[str, Any] = json.loads(self.status_file.read_text())
            return loaded
        except (OSError, json.JSONDecodeError):
            return None

    def assignment(self) -> dict[str, list[int]] | None:
        status = self._status()
        return None if status is None else {"plain-1": list(status["assigned"])}

    def handled(self) -> int | None:
        status = self._status()
        return None if status is None else int(status["ticks_in"])

    def pids(self) -> dict[str, int]:
        return {"plain-1": self.process.pid} if self.process is not None else {}

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(f"plain loop exited with code {self.process.returncode}")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, grace_s=15.0)
        if self._output is not None:
            self._output.close()
            self._output = None


def make_processor(kind: str, pipeline: Pipeline) -> Processor:
    if kind == "plain":
        return PlainLoopProcess(pipeline)
    if kind == "worker":
        return WorkerSet(pipeline)
    raise ValueError(f"unknown processor kind {kind!r}")


# --- feeds -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backlog:
    ticks: int
    symbols: int
    seconds: float
    per_partition: dict[int, int]


def publish_backlog(pipeline: Pipeline, ticks: int, symbols: int, seed: int = 42) -> Backlog:
    """Pre-produce ``ticks`` synthetic ticks over ``symbols`` symbols, as fast as the producer goes."""
    names = symbol_names(symbols)
    # Event times end about now: the worker rejects ticks more than 5 minutes in the future.
    clock = iter(range(time.time_ns() // 1_000_000 - ticks, 2**62))
    feed = SyntheticFeed(names, seed, clock_ms=lambda: next(clock))
    publisher = pipeline.publisher(**{"linger.ms": 50})
    per_symbol: Counter[str] = Counter()
    started = time.monotonic()
    for _ in range(ticks):
        tick = feed.next_tick()
        per_symbol[tick.symbol] += 1
        publisher.publish(tick)
    undelivered = publisher.close(timeout_s=120)
    if undelivered or publisher.stats.failed:
        raise BenchError(
            f"backlog: {undelivered} undelivered, {publisher.stats.failed} failed ({publisher.stats.last_error})"
        )
    per_partition: Counter[int] = Counter()
    for symbol, count in per_symbol.items():
        per_partition[partition_for(symbol_key(symbol), pipeline.partitions)] += count
    return Backlog(ticks, symbols, time.monotonic() - started, dict(sorted(per_partition.items())))


def prime(
    pipeline: Pipeline,
    answered: Callable[[], int],
    symbols: int,
    seed: int = 7,
    check: Callable[[], None] | None = None,
) -> int:
    """Send one tick per symbol (at the start prices :class:`PacedFeed` uses) and wait until all are answered.

    An assignment alone does not show that fetching, handling and producing all work yet; after this
    they do, so a measurement that follows starts with a processor that is really running.
    """
    publisher = pipeline.publisher(**{"linger.ms": 5})
    now_ms = time.time_ns() // 1_000_000
    for dynamics in make_dynamics(symbol_names(symbols), seed):
        publisher.publish(Tick(dynamics.symbol, dynamics.start_price, 1.0, now_ms, "SYN", None))
    if publisher.close(timeout_s=30):
        raise BenchError("priming ticks were not delivered within 30s")
    wait_for(lambda: answered() >= symbols, 120, f"the processor to answer {symbols} priming ticks", 0.05, check)
    return symbols


class PacedFeed(threading.Thread):
    """Publishes synthetic ticks stamped with the wall clock at ``rate`` per second until stopped or ``limit``."""

    def __init__(
        self, pipeline: Pipeline, rate: float, symbols: int, limit: int | None = None, linger_ms: int = 5, seed: int = 7
    ) -> None:
        super().__init__(name="paced-feed", daemon=True)
        self.pipeline = pipeline
        self.rate = rate
        self.symbols = symbols
        self.limit = limit
        self.linger_ms = linger_ms
        self.seed = seed
        self.sent = 0
        self.started_at = 0.0
        self.finished_at = 0.0
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            publisher = self.pipeline.publisher(**{"linger.ms": self.linger_ms})
            feed = SyntheticFeed(symbol_names(self.symbols), self.seed, lambda: time.time_ns() // 1_000_000)
            limiter = RateLimiter(self.rate)
            self.started_at = time.time()
            try:
                while not self._stop_event.is_set() and (self.limit is None or self.sent < self.limit):
                    limiter.wait()
                    publisher.publish(feed.next_tick())
                    self.sent += 1
            finally:
                self.finished_at = time.time()
                publisher.close(timeout_s=30)
        except BaseException as exc:  # reported by the scenario, which owns the thread
            self.error = exc

    def stop(self) -> None:
        self._stop_event.set()
        if self.ident is not None:  # started
            self.join(timeout=60)


# --- reading predictions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seen:
    """One prediction as the bench saw it: when it arrived and the fields that time it."""

    received_s: float
    symbol: str
    partition: int
    offset: int
    produced_ms: int
    predicted_us: int
    worker: str


class PredictionTap:
    """Reads a predictions topic from the beginning with a manual assignment (no group join to wait for).

    :meth:`poll` returns as soon as anything arrived, then takes whatever else is queued, and stamps the
    batch with the time it was handed over, so arrival times are not delayed by batching.
    """

    def __init__(self, pipeline: Pipeline, fetch_wait_ms: int = 5, fetch_min_bytes: int = 1) -> None:
        self.codec = AvroCodec(
            open_schema_store(None), f"{pipeline.predictions_topic}-value", load_schema(PREDICTION_SCHEMA_FILE)
        )
        self._consumer = Consumer(
            {
                "bootstrap.servers": pipeline.bootstrap_servers,
                "group.id": f"bench-tap-{uuid.uuid4().hex[:10]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": fetch_wait_ms,
                "fetch.min.bytes": fetch_min_bytes,
                **QUIET,
            }
        )
        self._consumer.assign(
            [TopicPartition(pipeline.predictions_topic, p, OFFSET_BEGINNING) for p in range(pipeline.partitions)]
        )
        self.errors: list[str] = []

    def poll_raw(self, timeout_s: float = 0.2, max_records: int = 5000) -> tuple[float, list[bytes]]:
        """(arrival time, undecoded values) of whatever arrived; errors other than end-of-partition are kept."""
        first = self._consumer.poll(timeout_s)
        if first is None:
            return time.time(), []
        messages = [first, *self._consumer.consume(num_messages=max_records, timeout=0)]
        received = time.time()
        values: list[bytes] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self.errors.append(str(error))
                continue
            values.append(message.value() or b"")
        return received, values

    def decode(self, received: float, value: bytes) -> Seen:
        record = self.codec.decode(value)
        return Seen(
            received,
            record["symbol"],
            record["source_partition"],
            record["source_offset"],
            record["tick_produced_at"],
            record["predicted_at"],
            record["worker"],
        )

    def poll(self, timeout_s: float = 0.2, max_records: int = 5000) -> list[Seen]:
        received, values = self.poll_raw(timeout_s, max_records)
        return [self.decode(received, value) for value in values]

    def close(self) -> None:
        self._consumer.close()


class RecordingTap(threading.Thread):
    """Keeps every prediction's bytes as it arrives and decodes only when asked, so it costs little CPU
    while a drain is being measured.

    It follows the head of the topic during the run instead of reading the whole topic afterwards:
    Tansu was seen answering fetches of older batches written by aiokafka with empty record sets.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(name="recording-tap", daemon=True)
        # Few, large fetches: arrival times do not matter here, and the broker's CPU is being measured.
        self.tap = PredictionTap(pipeline, fetch_wait_ms=200, fetch_min_bytes=256 * 1024)
        self.values: list[tuple[float, bytes]] = []
        self.error: BaseException | None = None
        self._decoded: list[Seen] = []
        self._stop_event = threading.Event()

    @property
    def count(self) -> int:
        return len(self.values)

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                received, values = self.tap.poll_raw(0.2, 20000)
                self.values.extend((received, value) for value in values)
        except BaseException as exc:  # reported by the scenario
            self.error = exc
        finally:
            self.tap.close()

    def decoded(self) -> list[Seen]:
        """Everything recorded so far, decoded (only the part not decoded before)."""
        recorded = len(self.values)
        self._decoded.extend(self.tap.decode(t, v) for t, v in self.values[len(self._decoded) : recorded])
        return self._decoded

    def wait_answered(self, expected: int, timeout_s: float, what: str, check: Callable[[], None]) -> list[Seen]:
        """Wait until ``expected`` distinct ticks were answered (duplicates do not count); return all seen."""
        deadline = time.monotonic() + timeout_s
        need = expected
        while True:

            def enough(need: int = need) -> bool:
                if self.error is not None:
                    raise BenchError(f"{what}: the tap failed: {self.error!r}")
                return self.count >= need

            wait_for(
                enough, max(0.0, deadline - time.monotonic()), f"{expected} {what} (have {self.count})", 0.2, check
            )
            seen = self.decoded()
            answered = len({(s.partition, s.offset) for s in seen})
            if answered >= expected:
                return seen
            need = self.count + expected - answered

    def stop(self) -> None:
        self._stop_event.set()
        if self.ident is not None:  # started
            self.join(timeout=30)


class LiveTap(threading.Thread):
    """A :class:`PredictionTap` in a background thread, collecting everything it sees into :attr:`seen`."""

    def __init__(self, pipeline: Pipeline, fetch_wait_ms: int = 5) -> None:
        super().__init__(name="live-tap", daemon=True)
        self.tap = PredictionTap(pipeline, fetch_wait_ms=fetch_wait_ms)
        self.seen: list[Seen] = []
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                self.seen.extend(self.tap.poll(0.1))
        except BaseException as exc:  # reported by the scenario
            self.error = exc
        finally:
            self.tap.close()

    def answered(self) -> int:
        return len({(s.partition, s.offset) for s in list(self.seen)})

    def stop(self) -> None:
        self._stop_event.set()
        if self.ident is not None:  # started
            self.join(timeout=30)


# --- statistics --------------------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the values.

    >>> percentile([1, 2, 3, 4], 50), percentile([1, 2, 3, 4], 99), percentile(range(1000), 99.9)
    (2, 4, 998)
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = max(1, int(-(-q * len(ordered) // 100)))  # ceil without floats drifting
    return ordered[min(rank, len(ordered)) - 1]


def longest_gap(times: Iterable[float], start: float | None = None, end: float | None = None) -> float:
    """Longest interval with no event inside [start, end] (window edges count as events).

    >>> longest_gap([1.0, 1.1, 2.0, 2.05]), longest_gap([1.0, 1.1], start=0.0, end=3.0)
    (0.9, 1.9)
    """
    points = sorted(t for t in times if (start is None or t >= start) and (end is None or t <= end))
    if start is not None:
        points.insert(0, start)
    if end is not None:
        points.append(end)
    return round(max((b - a for a, b in itertools.pairwise(points)), default=0.0), 6)
