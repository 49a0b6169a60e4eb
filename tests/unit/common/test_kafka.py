"""Unit tests for ``tickcast.common.kafka``: ``wait_for_broker`` retries and backoff, ``ensure_topics`` races, the
producer config."""

from __future__ import annotations

import itertools
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from tickcast.common import kafka
from tickcast.common.kafka import BrokerUnavailable, TopicRefused, ensure_topics, producer_config, wait_for_broker
from tickcast.common.security import KafkaClientSettings


class FakeClock:
    """Time that passes only when slept, so the waits are checked exactly, whatever the machine's load."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


CLOCK = FakeClock()


class FlakyAdmin:
    """An AdminClient stand-in whose metadata request fails ``failures`` times at once (a closed port), then
    answers."""

    instances: list[FlakyAdmin] = []
    failures = 0

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.calls: list[tuple[float, float]] = []  # (fake clock's time, request timeout)
        FlakyAdmin.instances.append(self)

    def poll(self, timeout: float) -> int:
        return 0  # no error callbacks to serve

    def list_topics(self, timeout: float) -> object:
        self.calls.append((CLOCK(), timeout))
        if len(self.calls) <= self.failures:
            raise KafkaException(f"connection refused (try {len(self.calls)})")
        return object()


def wait(settings: KafkaClientSettings, timeout_s: float) -> Any:
    return wait_for_broker(settings, timeout_s=timeout_s, clock=CLOCK, sleep=CLOCK.sleep)


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> type[FlakyAdmin]:
    FlakyAdmin.instances = []
    monkeypatch.setattr(kafka, "AdminClient", FlakyAdmin)
    return FlakyAdmin


def test_answers_after_failures_with_doubling_waits(flaky: type[FlakyAdmin]) -> None:
    flaky.failures = 3
    admin = wait(KafkaClientSettings(bootstrap_servers="k:1"), timeout_s=10)
    (made,) = flaky.instances
    assert admin is made and made.config["bootstrap.servers"] == "k:1"
    times = [at for at, _ in made.calls]
    waits = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert waits == pytest.approx([0.1, 0.2, 0.4])
    assert all(timeout == 2.0 for _, timeout in made.calls), "a request never waits more than 2 s"


def test_gives_up_at_the_deadline_naming_servers_deadline_attempts_and_last_error(flaky: type[FlakyAdmin]) -> None:
    flaky.failures = 10**6
    started = CLOCK()
    with pytest.raises(BrokerUnavailable) as info:
        wait(KafkaClientSettings(bootstrap_servers="k:1,k:2"), timeout_s=1.0)
    elapsed = CLOCK() - started
    (made,) = flaky.instances
    attempts = len(made.calls)
    # Tries at 0, 0.1, 0.3, 0.7 and, the last wait cut from 0.8 s to the deadline, 1.0 s.
    assert [at - started for at, _ in made.calls] == pytest.approx([0, 0.1, 0.3, 0.7, 1.0])
    assert elapsed == pytest.approx(1.0), "the last wait is cut at the deadline, not slept in full"
    assert made.calls[-2][1] == pytest.approx(0.3), "a request gets no more than what is left"
    assert made.calls[-1][1] == pytest.approx(0.1), "the last request gets what is left, at least 0.1 s"
    message = str(info.value)
    last_error = f"connection refused (try {attempts})"
    expected = f"Kafka at k:1,k:2 did not answer within 1s ({attempts} attempts; last error: {last_error})"
    assert message == expected, message
    assert isinstance(info.value.__cause__, KafkaException)


def test_other_errors_are_not_retried(flaky: type[FlakyAdmin], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: FlakyAdmin, timeout: float) -> object:
        self.calls.append((CLOCK(), timeout))
        raise TypeError("a bug, not an unreachable broker")

    monkeypatch.setattr(FlakyAdmin, "list_topics", broken)
    with pytest.raises(TypeError, match="a bug"):
        wait(KafkaClientSettings(bootstrap_servers="k:1"), timeout_s=5)
    assert len(flaky.instances[0].calls) == 1


def test_producers_are_idempotent_and_librdkafka_accepts_the_contract() -> None:
    config = producer_config(KafkaClientSettings(bootstrap_servers="127.0.0.1:1"))
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    assert 1 <= config["max.in.flight.requests.per.connection"] <= 5 and config["retries"] > 0
    # librdkafka checks the idempotence constraints when the producer is built, and refuses inconsistent ones.
    Producer({**config, "log_level": 0})
    with pytest.raises(KafkaException, match="acks"):
        Producer({**config, "acks": 1, "log_level": 0})


class CreatingAdmin:
    """An AdminClient stand-in whose ``create_topics`` futures fail with the given KafkaErrors (None = created)."""

    def __init__(self, outcomes: dict[str, KafkaError | None]) -> None:
        self.outcomes = outcomes

    def list_topics(self, timeout: float) -> Any:
        return SimpleNamespace(topics={})

    def create_topics(self, topics: list[Any], request_timeout: float) -> dict[str, Future[None]]:
        futures: dict[str, Future[None]] = {}
        for topic in topics:
            future: Future[None] = Future()
            error = self.outcomes[topic.topic]
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(KafkaException(error))
            futures[topic.topic] = future
        return futures


def test_ensure_topics_tolerates_a_topic_created_meanwhile_by_its_error_code() -> None:
    # Another worker created "b" between our listing and our request: the code says so, whatever the text.
    admin = CreatingAdmin(
        {"a": None, "b": KafkaError(KafkaError.TOPIC_ALREADY_EXISTS, "Topic 'b' exists (localised text)")}
    )
    assert ensure_topics(admin, ["a", "b"], partitions=1, replication_factor=1) == ["a"]  # type: ignore[arg-type]


def test_ensure_topics_raises_other_errors_even_when_their_text_mentions_the_code() -> None:
    refused = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "not allowed (not TOPIC_ALREADY_EXISTS)")
    admin = CreatingAdmin({"a": refused})
    with pytest.raises(TopicRefused) as caught:
        ensure_topics(admin, ["a"], partitions=1, replication_factor=1)  # type: ignore[arg-type]
    assert isinstance(caught.value.__cause__, KafkaException)
    assert caught.value.__cause__.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


@pytest.mark.parametrize(
    "code", [KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED,
             KafkaError.INVALID_REPLICATION_FACTOR, KafkaError.POLICY_VIOLATION],
)  # fmt: skip
def test_a_refused_creation_is_one_line_naming_the_topic_and_the_reason(code: int) -> None:
    # Apache Kafka refuses a worker without the Create ACL, or a replication factor above the broker count;
    # the embedded broker never does. The worker's start must fail with one line (user_errors), not a traceback.
    admin = CreatingAdmin({"g-snapshots": KafkaError(code, "refused by the cluster")})
    with pytest.raises(TopicRefused) as caught:
        ensure_topics(admin, ["g-snapshots"], partitions=8, replication_factor=3)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    assert "'g-snapshots'" in message and "replication factor 3" in message
    assert KafkaError(code).name() in message and "refused by the cluster" in message
