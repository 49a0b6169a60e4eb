"""A private tickcast pipeline on a shared broker: its own topics, consumer group, worker processes and logs.

Tests get one per test on the session broker, the bench one per measured run on its broker, so no two
ever see each other's records, offsets or state.
"""

from __future__ import annotations

import dataclasses
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Message

from tickcast.common.kafka import wait_for_broker
from tickcast.common.security import KafkaClientSettings
from tickcast.common.settings import CommonSettings
from tickcast.common.topic_admin import create_declared
from tickcast.common.topic_specs import TopicSpec, topic_specs
from tickcast.ops.workers import WorkerPool, WorkerProcess
from tickcast.producer.publisher import TickPublisher
from tickcast.producer.settings import ProducerSettings
from tickcast.subscriber.reader import PredictionReader
from tickcast.subscriber.settings import SubscriberSettings
from tickcast.testing.environment import base_env
from tickcast.testing.stats import Assignment, assignment_of, wait_for_split

#: Tansu workaround: group joins take ~23 s at longer session timeouts, ~3 s at 6 s. A worker killed
#: with SIGKILL is noticed by the group only after this long.
SESSION_TIMEOUT_S = 6.0


def new_unique() -> str:
    """A short id that keeps one run's topics and consumer group apart from every other run's."""
    return uuid.uuid4().hex[:10]


@dataclass
class Pipeline:
    """Topics, group and workers of one run; :meth:`env` is what every process of the run is started with.

    >>> pipeline = Pipeline("127.0.0.1:9092", unique="abc", log_dir=Path("/tmp/run"))
    >>> pipeline.ticks_topic, pipeline.dlq_topic, pipeline.group_id
    ('ticks-abc', 'ticks-abc.dlq', 'predictor-abc')
    >>> env = pipeline.env()
    >>> env["TICKCAST_PREDICTIONS_TOPIC"], env["TICKCAST_SESSION_TIMEOUT_S"], env["TICKCAST_DATA_DIR"]
    ('predictions-abc', '6.0', '/tmp/run/data')
    """

    bootstrap_servers: str
    unique: str
    log_dir: Path
    partitions: int = 8
    model: str = "linear"
    extra_env: dict[str, str] = field(default_factory=dict)
    security: dict[str, str] = field(default_factory=dict)
    """TLS and SASL fields of :class:`KafkaClientSettings` (``{"security_protocol": "SSL", ...}``), for every
    client of the run: in this process and, as ``TICKCAST_*`` variables, in its children."""
    group_prefix: str = "predictor"
    worker_prefix: str = ""
    """Workers are named ``<worker_prefix>-<n>``; by default after the run's id, so logs say whose they are."""
    pool: WorkerPool | None = None

    @property
    def ticks_topic(self) -> str:
        return f"ticks-{self.unique}"

    @property
    def predictions_topic(self) -> str:
        return f"predictions-{self.unique}"

    @property
    def dlq_topic(self) -> str:
        return f"ticks-{self.unique}.dlq"

    @property
    def model_events_topic(self) -> str:
        return f"model-events-{self.unique}"

    @property
    def group_id(self) -> str:
        return f"{self.group_prefix}-{self.unique}"

    @property
    def kafka(self) -> KafkaClientSettings:
        """How this run's clients reach the broker (bootstrap servers, TLS, SASL)."""
        fields: dict[str, Any] = {**self.security, "bootstrap_servers": self.bootstrap_servers}
        return KafkaClientSettings(**fields)

    def settings_kwargs(self) -> dict[str, Any]:
        """The fields every service's settings share, for building settings in this process."""
        return {
            **self.security,
            "bootstrap_servers": self.bootstrap_servers,
            "ticks_topic": self.ticks_topic,
            "predictions_topic": self.predictions_topic,
            "dlq_topic": self.dlq_topic,
            "model_events_topic": self.model_events_topic,
            "partitions": self.partitions,
        }

    def env(self) -> dict[str, str]:
        """The environment of every child: workers, the CLI, the bench's plain loop."""
        return {
            **base_env(),
            "TICKCAST_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "TICKCAST_TICKS_TOPIC": self.ticks_topic,
            "TICKCAST_PREDICTIONS_TOPIC": self.predictions_topic,
            "TICKCAST_DLQ_TOPIC": self.dlq_topic,
            "TICKCAST_MODEL_EVENTS_TOPIC": self.model_events_topic,
            "TICKCAST_PARTITIONS": str(self.partitions),
            "TICKCAST_GROUP_ID": self.group_id,
            "TICKCAST_MODEL": self.model,
            "TICKCAST_LOG_LEVEL": "INFO",
            "TICKCAST_SESSION_TIMEOUT_S": str(SESSION_TIMEOUT_S),
            # Faust's scratch directory per worker: with this run's logs, not shared with other runs.
            "TICKCAST_DATA_DIR": str(self.log_dir / "data"),
            **{f"TICKCAST_{name.upper()}": value for name, value in self.security.items()},
            **self.extra_env,
        }

    def create_topics(self, config: dict[str, str] | None = None) -> None:
        """Create the run's declared topics (configs included) under its own names; ``config`` adds to each.

        The workers create the snapshots topic.
        """
        admin = wait_for_broker(self.kafka, timeout_s=20)
        specs = [spec for spec in self.topic_specs() if spec.role != "snapshots"]
        if config:
            specs = [dataclasses.replace(spec, configs={**spec.configs, **config}) for spec in specs]
        create_declared(admin, specs)

    def topic_specs(self) -> list[TopicSpec]:
        """The specs of this run's topics (its own names, partitions and group)."""
        settings = CommonSettings(
            bootstrap_servers=self.bootstrap_servers,
            ticks_topic=self.ticks_topic,
            predictions_topic=self.predictions_topic,
            dlq_topic=self.dlq_topic,
            model_events_topic=self.model_events_topic,
            partitions=self.partitions,
        )
        return topic_specs(settings, self.group_id)

    def start_workers(self, count: int, **env: str) -> list[WorkerProcess]:
        """Start ``count`` more ``tickcast worker`` processes in this run's group (not waiting for them).

        ``env`` adds to or overrides this run's environment for these workers only.
        """
        if self.pool is None:
            prefix = self.worker_prefix or f"w{self.unique[:4]}"
            self.pool = WorkerPool(env=self.env(), log_dir=self.log_dir, name_prefix=prefix)
        return [self.pool.start_one(**env) for _ in range(count)]

    @property
    def workers(self) -> list[WorkerProcess]:
        """The workers started and not stopped."""
        return self.pool.workers if self.pool is not None else []

    def check_workers_alive(self) -> None:
        """Raise AssertionError, with the logs, if a worker exited."""
        for worker in self.workers:
            if not worker.alive:
                raise AssertionError(
                    f"worker {worker.worker_id} exited with code {worker.process.returncode}:\n{self.worker_logs()}"
                )

    def publisher(
        self,
        record_partitions: bool = True,
        *,
        on_delivered: Callable[[Message], None] | None = None,
        **overrides: Any,
    ) -> TickPublisher:
        """A tick producer for this run; ``overrides`` are librdkafka settings (``{"linger.ms": 0}``)."""
        # librdkafka's info-level chatter on close (e.g. BGQUEUE purges) would interleave with the output.
        overrides.setdefault("log_level", 4)
        settings = ProducerSettings(**self.settings_kwargs())
        return TickPublisher(settings, record_partitions=record_partitions, on_delivered=on_delivered, **overrides)

    def reader(self, dead_letters: bool = False) -> PredictionReader:
        return PredictionReader(SubscriberSettings(**self.settings_kwargs()), dead_letters=dead_letters)

    def __enter__(self) -> Pipeline:
        """Create the run's topics; leaving the ``with`` block stops every worker the run started."""
        self.create_topics()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop every worker by PID: SIGTERM to all at once, then SIGKILL any still running after ``grace_s``."""
        if self.pool is None:
            return
        # All at once: stopped one by one, each worker left would take over the partitions of those stopped
        # before it (a rebalance and a restore) only to be stopped next. A second SIGTERM, from stop_all, is
        # ignored by a worker already shutting down.
        for worker in self.pool.workers:
            if worker.alive:
                worker.process.send_signal(signal.SIGTERM)
        self.pool.stop_all(grace_s=grace_s)

    def worker_logs(self, chars: int = 3000) -> str:
        """The tail of every process log of this run, for failure messages."""
        return "\n".join(
            f"--- {path.name} (last {chars} chars)\n{path.read_text(errors='replace')[-chars:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


def wait_for_assignment(pipeline: Pipeline, workers: list[WorkerProcess], timeout_s: float = 60.0) -> Assignment:
    """Wait until the pipeline's partitions are split among ``workers``; return worker id -> partitions.

    Fails at once, with the logs, if one of the pipeline's workers exits meanwhile.
    """
    return wait_for_split(
        lambda: assignment_of(workers),
        pipeline.partitions,
        f"{len(workers)} worker(s)",
        timeout_s,
        check=pipeline.check_workers_alive,
        diagnostics=pipeline.worker_logs,
    )
