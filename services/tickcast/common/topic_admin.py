"""Topics as declared (:mod:`tickcast.common.topic_specs`) on a cluster: create them, and find drift.

Drift is what ``describe_configs`` reports that differs from a spec: a missing topic, another partition
count, a config with another value. A broker may accept a config and not honour it, or not report it:
the embedded Tansu broker keeps messages in memory, with no retention and no compaction, so on it
retention and cleanup policy are reported as ignored rather than as drift (:data:`EMBEDDED_IGNORES`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from tickcast.common.kafka import TopicMismatch, TopicRefused, ensure_topics
from tickcast.common.topic_specs import TopicSpec

#: Configs the embedded broker (Tansu, memory storage) accepts but does not act on.
EMBEDDED_IGNORES = frozenset({"retention.ms", "cleanup.policy", "min.insync.replicas"})


@dataclass(frozen=True, slots=True)
class Drift:
    """One difference between a topic on the cluster and its spec."""

    topic: str
    what: str
    declared: str
    actual: str | None

    def __str__(self) -> str:
        actual = self.actual if self.actual is not None else "not reported"
        return f"{self.topic}: {self.what} is {actual}, declared {self.declared}"


def create_declared(admin: AdminClient, specs: Iterable[TopicSpec], timeout_s: float = 30.0) -> list[str]:
    """Create the specs' topics that are missing, each with its configs; check existing ones' partitions."""
    created: list[str] = []
    for spec in specs:
        created += ensure_topics(
            admin, [spec.name], spec.partitions, spec.replication_factor, timeout_s=timeout_s, config=spec.configs
        )
    return created


def check_partition_counts(admin: AdminClient, specs: Iterable[TopicSpec], timeout_s: float = 30.0) -> None:
    """Raise :class:`TopicMismatch` if a spec's existing topic has another partition count; missing ones pass.

    Apache Kafka adds partitions to a live topic (CreatePartitions); the embedded broker cannot. A worker
    writes each prediction and snapshot to its tick's partition number, so ticks with more partitions than
    predictions or snapshots would send records to partitions that do not exist, and every symbol would move.

    >>> from types import SimpleNamespace
    >>> from tickcast.common.settings import CommonSettings
    >>> from tickcast.common.topic_specs import topic_specs
    >>> ticks = topic_specs(CommonSettings(partitions=8))[0]
    >>> admin = SimpleNamespace(list_topics=lambda timeout: SimpleNamespace(
    ...     topics={"ticks": SimpleNamespace(partitions=dict.fromkeys(range(12)), error=None)}))
    >>> check_partition_counts(admin, [ticks])
    Traceback (most recent call last):
    ...
    tickcast.common.kafka.TopicMismatch: topic 'ticks' has 12 partitions, tickcast is configured for 8 \
(TICKCAST_PARTITIONS): predictions and snapshots go to their tick's partition number
    """
    specs = list(specs)
    existing = admin.list_topics(timeout=timeout_s).topics  # all at once: naming one may auto-create it
    wrong = []
    for spec in specs:
        metadata = existing.get(spec.name)
        if metadata is not None and metadata.error is None and len(metadata.partitions) != spec.partitions:
            wrong.append(f"topic {spec.name!r} has {len(metadata.partitions)} partitions")
    if wrong:
        raise TopicMismatch(
            f"{', '.join(wrong)}, tickcast is configured for {specs[0].partitions} (TICKCAST_PARTITIONS): "
            "predictions and snapshots go to their tick's partition number"
        )


def find_drift(admin: AdminClient, specs: Iterable[TopicSpec], timeout_s: float = 30.0) -> list[Drift]:
    """Every difference between the cluster and ``specs`` (empty: the cluster is as declared)."""
    drifts: list[Drift] = []
    present: list[TopicSpec] = []
    # All topics at once: a metadata request naming a missing topic makes a broker with auto-creation create it.
    existing = admin.list_topics(timeout=timeout_s).topics
    for spec in specs:
        metadata = existing.get(spec.name)
        partitions = None if metadata is None or metadata.error is not None else len(metadata.partitions)
        if partitions is None:
            drifts.append(Drift(spec.name, "the topic", "present", "missing"))
            continue
        if partitions != spec.partitions:
            drifts.append(Drift(spec.name, "partitions", str(spec.partitions), str(partitions)))
        present.append(spec)
    if not present:
        return drifts
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in present],
                                     request_timeout=timeout_s)  # fmt: skip
    actual = {}
    for resource, future in futures.items():
        try:
            actual[resource.name] = future.result(timeout=timeout_s)
        except KafkaException as exc:
            # Apache Kafka answers per topic, e.g. TOPIC_AUTHORIZATION_FAILED without the DescribeConfigs ACL.
            error = exc.args[0] if exc.args else exc
            reason = f"{error.name()}: {error.str()}" if isinstance(error, KafkaError) else str(error)
            raise TopicRefused(
                f"Kafka refused to describe the configs of topic {resource.name!r}: {reason}; "
                "grant this principal DescribeConfigs on it"
            ) from exc
    for spec in present:
        entries = actual.get(spec.name, {})
        for name, declared in spec.configs.items():
            entry = entries.get(name)
            value = None if entry is None else entry.value
            if value != declared:
                drifts.append(Drift(spec.name, name, declared, value))
    return drifts


def is_embedded(admin: AdminClient, topic: str, timeout_s: float = 30.0) -> bool:
    """Whether the broker looks like the embedded one: Apache Kafka describes every topic config, defaults
    included (``segment.bytes`` always among them); Tansu describes only the configs a topic was created with.
    """
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource], request_timeout=timeout_s)[resource].result(timeout=timeout_s)
    return "segment.bytes" not in entries


def split_ignored(drifts: list[Drift], embedded: bool) -> tuple[list[Drift], list[Drift]]:
    """(real drift, drift in configs the embedded broker ignores); nothing is ignored on a real cluster.

    >>> drift = [Drift("t", "retention.ms", "1", None), Drift("t", "partitions", "8", "4")]
    >>> [len(part) for part in split_ignored(drift, embedded=True)], [len(p) for p in split_ignored(drift, False)]
    ([1, 1], [2, 0])
    """
    if not embedded:
        return drifts, []
    return [d for d in drifts if d.what not in EMBEDDED_IGNORES], [d for d in drifts if d.what in EMBEDDED_IGNORES]
