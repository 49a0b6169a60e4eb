"""confluent-kafka plumbing shared by producers, ops tools and tests: the client factories, readiness, topics.

Every confluent-kafka client in tickcast is made by :func:`new_producer`, :func:`new_consumer` or
:func:`new_admin`, from the service's settings, so none can miss the TLS and SASL settings
(tests/unit/common/test_client_factories.py holds every module to that).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type, wait_exponential

from tickcast.common.refusals import RefusalWatch
from tickcast.common.security import KafkaClientSettings, librdkafka_security
from tickcast.common.topics import PRODUCER_PARTITIONER

log = structlog.get_logger("tickcast.kafka")


class BrokerUnavailable(Exception):
    """The bootstrap servers did not answer within the deadline."""


class TopicMismatch(Exception):
    """A topic exists with a partition count other than the one tickcast was configured with."""


class TopicRefused(Exception):
    """The cluster refused to create a missing topic (no Create ACL, replication factor above the brokers, ...),
    or to describe one's configs (no DescribeConfigs ACL)."""


def refused_topic_message(name: str, partitions: int, replication_factor: int, error: object) -> str:
    """One line saying which topic Kafka refused, with what, and why (the error's name and text).

    >>> refused_topic_message("s", 8, 3, KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "denied"))
    "Kafka refused to create topic 's' (8 partitions, replication factor 3): TOPIC_AUTHORIZATION_FAILED: denied; \
grant this principal Create on it or create it beforehand (`tickcast topics create`), and check \
TICKCAST_REPLICATION_FACTOR against the brokers"
    """
    reason = f"{error.name()}: {error.str()}" if isinstance(error, KafkaError) else str(error)
    return (
        f"Kafka refused to create topic {name!r} ({partitions} partitions, replication factor {replication_factor}): "
        f"{reason}; grant this principal Create on it or create it beforehand (`tickcast topics create`), "
        "and check TICKCAST_REPLICATION_FACTOR against the brokers"
    )


#: Between attempts to reach the broker: 0.1 s, doubling up to 2 s.
_BROKER_BACKOFF = wait_exponential(multiplier=0.1, max=2.0)

#: librdkafka logs every closed idle connection at level 6; a broker shutdown is not news.
QUIET: dict[str, Any] = {"log.connection.close": False}


#: The idempotent producer's contract (librdkafka refuses other values with ``enable.idempotence``):
#: every replica acknowledges, at most 5 requests in flight per connection (the broker keeps the last 5
#: sequence numbers per producer to drop duplicates), and retries until ``message.timeout.ms``.
IDEMPOTENT: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "max.in.flight.requests.per.connection": 5,
    "retries": 2_147_483_647,
}


def client_config(kafka: KafkaClientSettings, **overrides: Any) -> dict[str, Any]:
    """What every librdkafka client starts from: the bootstrap servers, TLS and SASL, quiet connection logs.

    >>> config = client_config(KafkaClientSettings(bootstrap_servers="k:9093", security_protocol="SSL"))
    >>> config["bootstrap.servers"], config["security.protocol"], config["ssl.endpoint.identification.algorithm"]
    ('k:9093', 'SSL', 'https')
    """
    return {"bootstrap.servers": kafka.bootstrap_servers, **librdkafka_security(kafka), **QUIET, **overrides}


def producer_config(kafka: KafkaClientSettings, **overrides: Any) -> dict[str, Any]:
    """Producer settings that keep symbols on the partition Faust expects, and each partition's order.

    Idempotent: a retry after a broker hiccup can neither duplicate a message nor reorder a
    partition's messages, which the one-prediction-per-lineage dedup rule relies on.

    >>> config = producer_config(KafkaClientSettings(bootstrap_servers="k:9092"), **{"linger.ms": 20})
    >>> config["partitioner"], config["enable.idempotence"], config["acks"], config["security.protocol"]
    ('murmur2_random', True, 'all', 'PLAINTEXT')
    """
    return client_config(
        kafka,
        **{"partitioner": PRODUCER_PARTITIONER, **IDEMPOTENT, "linger.ms": 5, "compression.type": "none", **overrides},
    )


def new_producer(kafka: KafkaClientSettings, **overrides: Any) -> Producer:
    """An idempotent producer (:func:`producer_config`); ``overrides`` are librdkafka properties."""
    return Producer(producer_config(kafka, **overrides))


def new_consumer(kafka: KafkaClientSettings, group_id: str, **overrides: Any) -> Consumer:
    """A consumer in ``group_id``; ``overrides`` are librdkafka properties."""
    return Consumer(client_config(kafka, **{"group.id": group_id, **overrides}))


def new_admin(kafka: KafkaClientSettings, **overrides: Any) -> AdminClient:
    """An admin client (metadata, topics, groups)."""
    return AdminClient(client_config(kafka, **overrides))


def wait_for_broker(
    kafka: KafkaClientSettings,
    timeout_s: float = 30.0,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> AdminClient:
    """Return an admin client once the cluster answers a metadata request; retry with backoff until then.

    Waits 0.1 s after the first failure, doubling up to 2 s, never past the deadline. Raises
    :class:`BrokerUnavailable` naming the servers, the deadline, the attempts made and the last error, or at
    once :class:`~tickcast.common.refusals.BrokerRefused` when the broker refuses the login or TLS handshake.
    ``clock`` and ``sleep`` measure and spend the waits (tests pass a fake pair to check them exactly).
    """
    bootstrap_servers = kafka.bootstrap_servers
    watch = RefusalWatch(kafka)
    # librdkafka's own log lines would repeat, on stderr, what the watch turns into one line.
    admin = new_admin(kafka, error_cb=watch, log_level=0)

    def ask_for_metadata(timeout: float) -> None:
        try:
            admin.list_topics(timeout=timeout)
        except KafkaException:
            admin.poll(0)  # serves error_cb: the reason behind librdkafka's generic "transport failure"
            watch.raise_if_refused()
            raise

    # Our own deadline, not tenacity's stop_after_delay: that one reads the real clock, whatever clock is given.
    deadline = clock() + timeout_s

    def remaining_s() -> float:
        return deadline - clock()

    def log_retry(state: RetryCallState) -> None:
        log.warning("broker_unreachable_retrying", bootstrap_servers=bootstrap_servers, attempt=state.attempt_number)

    retrying = Retrying(
        retry=retry_if_exception_type(KafkaException),
        stop=lambda state: remaining_s() <= 0,
        wait=lambda state: min(_BROKER_BACKOFF(state), max(0.0, remaining_s())),
        before_sleep=log_retry,
        sleep=sleep,
    )
    try:
        for attempt in retrying:
            with attempt:
                # One metadata request may not outlast the deadline by much, nor take more than 2 s.
                ask_for_metadata(min(2.0, max(0.1, remaining_s())))
    except RetryError as exhausted:
        last = exhausted.last_attempt
        exc = last.exception()
        reason = watch.last_error or (exc.args[0] if exc and exc.args else exc)
        raise BrokerUnavailable(
            f"Kafka at {bootstrap_servers} did not answer within {timeout_s:.0f}s "
            f"({last.attempt_number} attempts; last error: {reason})"
        ) from exc
    return admin


def topic_partitions(admin: AdminClient, topic: str, timeout_s: float = 10.0) -> int | None:
    """Partition count of a topic, or None if it does not exist."""
    metadata = admin.list_topics(topic=topic, timeout=timeout_s).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return None
    return len(metadata.partitions)


def ensure_topics(
    admin: AdminClient,
    names: Iterable[str],
    partitions: int,
    replication_factor: int,
    timeout_s: float = 30.0,
    config: dict[str, str] | None = None,
) -> list[str]:
    """Create the topics that are missing; check the partition count of those that exist. Returns created names."""
    existing = admin.list_topics(timeout=timeout_s).topics
    wanted = list(dict.fromkeys(names))
    for name in wanted:
        if name in existing and len(existing[name].partitions) != partitions:
            raise TopicMismatch(
                f"topic {name!r} has {len(existing[name].partitions)} partitions, tickcast is configured for "
                f"{partitions} (TICKCAST_PARTITIONS); symbols would map to other partitions"
            )
    missing = [name for name in wanted if name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=config or {})
            for name in missing
        ],
        request_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            # Another process created it since we listed the topics: judged by the error code, not its text.
            error = exc.args[0] if exc.args else None
            if not (isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                # Apache Kafka refuses with an ACL or a policy (the embedded broker never does): one line, not a
                # traceback per restart of a crash-looping pod.
                raise TopicRefused(refused_topic_message(name, partitions, replication_factor, error)) from exc
    return created
