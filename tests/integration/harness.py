"""A private tickcast pipeline per test on the session broker: own topics, own group, real worker processes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import base_env
from tickcast.common.kafka import ensure_topics, wait_for_broker
from tickcast.common.records import Prediction
from tickcast.ops.workers import WorkerPool, WorkerProcess
from tickcast.producer.publisher import TickPublisher
from tickcast.producer.settings import ProducerSettings
from tickcast.subscriber.reader import PredictionReader, Received
from tickcast.subscriber.settings import SubscriberSettings


@dataclass
class Pipeline:
    bootstrap_servers: str
    unique: str
    log_dir: Path
    partitions: int = 8
    model: str = "linear"
    extra_env: dict[str, str] = field(default_factory=dict)
    supervisor: WorkerPool | None = None

    @property
    def ticks_topic(self) -> str:
        return f"ticks-{self.unique}"

    @property
    def predictions_topic(self) -> str:
        return f"predictions-{self.unique}"

    @property
    def dlq_topic(self) -> str:
        return f"ticks-{self.unique}.dlq"

    def settings_kwargs(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "ticks_topic": self.ticks_topic,
            "predictions_topic": self.predictions_topic,
            "dlq_topic": self.dlq_topic,
            "partitions": self.partitions,
        }

    def env(self) -> dict[str, str]:
        return {
            **base_env(),
            "TICKCAST_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "TICKCAST_TICKS_TOPIC": self.ticks_topic,
            "TICKCAST_PREDICTIONS_TOPIC": self.predictions_topic,
            "TICKCAST_DLQ_TOPIC": self.dlq_topic,
            "TICKCAST_PARTITIONS": str(self.partitions),
            "TICKCAST_GROUP_ID": f"predictor-{self.unique}",
            "TICKCAST_MODEL": self.model,
            "TICKCAST_LOG_LEVEL": "INFO",
            # Tansu workaround: group joins take ~23 s at longer session timeouts, ~3 s at 6 s.
            "TICKCAST_SESSION_TIMEOUT_S": "6",
            **self.extra_env,
        }

    def create_topics(self) -> None:
        admin = wait_for_broker(self.bootstrap_servers, timeout_s=20)
        ensure_topics(admin, [self.ticks_topic, self.predictions_topic, self.dlq_topic], self.partitions, 1)

    def start_workers(self, count: int) -> list[WorkerProcess]:
        if self.supervisor is None:
            self.supervisor = WorkerPool(env=self.env(), log_dir=self.log_dir, name_prefix=f"w{self.unique[:4]}")
        return [self.supervisor.start_one() for _ in range(count)]

    def publisher(self, **overrides: Any) -> TickPublisher:
        return TickPublisher(ProducerSettings(**self.settings_kwargs()), record_partitions=True, **overrides)

    def reader(self, dead_letters: bool = False) -> PredictionReader:
        return PredictionReader(SubscriberSettings(**self.settings_kwargs()), dead_letters=dead_letters)

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop_all()

    def worker_logs(self) -> str:
        if self.supervisor is None:
            return ""
        return "\n".join(
            f"--- {p.name} (last 3000 chars)\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )


def worker_stats(worker: WorkerProcess) -> dict[str, Any] | None:
    """The worker's /stats, or None while its web server is not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/stats", timeout=2) as response:
            loaded: dict[str, Any] = json.loads(response.read())
            return loaded
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


def wait_for_assignment(
    pipeline: Pipeline, workers: list[WorkerProcess], timeout_s: float = 60.0
) -> dict[str, list[int]]:
    """Poll until every partition is owned by exactly one of ``workers``; return worker_id -> partitions."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, list[int]] = {}
    while time.monotonic() < deadline:
        for worker in workers:
            if not worker.alive:
                raise AssertionError(f"worker {worker.worker_id} exited early:\n{pipeline.worker_logs()}")
        stats = {w.worker_id: worker_stats(w) for w in workers}
        last = {wid: (s or {}).get("assigned_partitions", []) for wid, s in stats.items()}
        owned = sorted(p for parts in last.values() for p in parts)
        if owned == list(range(pipeline.partitions)) and all(s is not None for s in stats.values()):
            return last
        time.sleep(0.2)  # polling interval of a deadline loop
    raise AssertionError(
        f"partitions 0..{pipeline.partitions - 1} were not split among {len(workers)} workers within {timeout_s}s; "
        f"last seen {last}\n{pipeline.worker_logs()}"
    )


def collect(
    reader: PredictionReader, expected: int, timeout_s: float, what: str, pipeline: Pipeline | None = None
) -> list[Received]:
    """Read until ``expected`` records arrived; fail naming how many are missing."""
    got: list[Received] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < expected and time.monotonic() < deadline:
        got.extend(reader.poll(timeout_s=0.2))
    if len(got) < expected:
        logs = pipeline.worker_logs() if pipeline else ""
        raise AssertionError(f"only {len(got)} of {expected} {what} arrived within {timeout_s}s\n{logs}")
    return got


def predictions_of(received: list[Received]) -> list[Prediction]:
    errors = [r.error for r in received if r.error]
    assert not errors, f"undecodable records on the predictions topic: {errors[:3]}"
    return [r.prediction for r in received if r.prediction is not None]
