"""A cluster that refuses to create a topic stops a command with one line, not a traceback."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import typer
from typer.testing import CliRunner

from tickcast.cli import app
from tickcast.cli.common import user_errors
from tickcast.common.kafka import TopicRefused


def test_a_refused_topic_is_a_user_error_with_exit_code_1(capsys: pytest.CaptureFixture[str]) -> None:
    # `tickcast worker` creates its snapshots topic at start; on Apache Kafka without the Create ACL that is refused.
    with pytest.raises(typer.Exit) as caught, user_errors():
        raise TopicRefused("Kafka refused to create topic 'g-snapshots' (...): TOPIC_AUTHORIZATION_FAILED")
    assert caught.value.exit_code == 1
    assert "TOPIC_AUTHORIZATION_FAILED" in capsys.readouterr().err


def test_a_worker_refuses_to_start_when_ticks_has_more_partitions_than_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Apache Kafka adds partitions to a live topic (kafka-topics --alter); the embedded broker cannot. A worker
    # of ticks partition 9 would send predictions and snapshots to a partition 9 that the other topics lack.
    from tickcast.common import kafka
    from tickcast.predictor import app as predictor_app

    def listing(**partitions: int) -> SimpleNamespace:
        found = {t: SimpleNamespace(partitions=dict.fromkeys(range(n)), error=None) for t, n in partitions.items()}
        return SimpleNamespace(topics=found)

    admin = SimpleNamespace(list_topics=lambda timeout: listing(ticks=12, predictions=8))
    monkeypatch.setattr(kafka, "wait_for_broker", lambda settings, timeout_s: admin)
    started: list[object] = []
    monkeypatch.setattr(predictor_app, "run_worker", started.append)
    monkeypatch.setenv("TICKCAST_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("TICKCAST_PARTITIONS", "8")
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 1, result.output
    assert started == []
    assert "topic 'ticks' has 12 partitions, tickcast is configured for 8" in result.stderr
    admin.list_topics = lambda timeout: listing(ticks=8, predictions=8)
    assert CliRunner().invoke(app, ["worker"]).exit_code == 0
    assert len(started) == 1


def test_a_gateway_refuses_to_start_when_predictions_has_another_partition_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # It reads partitions 0 to TICKCAST_PARTITIONS - 1: with more, the symbols of the others would never be served.
    from tickcast.common import kafka
    from tickcast.gateway import server

    topics = {"predictions": SimpleNamespace(partitions=dict.fromkeys(range(12)), error=None)}
    admin = SimpleNamespace(list_topics=lambda timeout: SimpleNamespace(topics=topics))
    monkeypatch.setattr(kafka, "wait_for_broker", lambda settings, timeout_s: admin)
    started: list[object] = []
    monkeypatch.setattr(server, "run_gateway", started.append)
    monkeypatch.setenv("TICKCAST_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("TICKCAST_PARTITIONS", "8")
    result = CliRunner().invoke(app, ["gateway"])
    assert result.exit_code == 1, result.output
    assert started == []
    assert "topic 'predictions' has 12 partitions, tickcast is configured for 8" in result.stderr


def test_topics_check_without_describe_configs_acl_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # Apache Kafka answers DescribeConfigs per topic with TOPIC_AUTHORIZATION_FAILED when the principal lacks the
    # DescribeConfigs ACL; confluent-kafka raises it from the future's result().
    from concurrent.futures import Future

    from confluent_kafka import KafkaError, KafkaException

    from tickcast.common import kafka

    def denied(resources: list[object], request_timeout: float) -> dict[object, Future[object]]:
        futures: dict[object, Future[object]] = {}
        for resource in resources:
            futures[resource] = Future()
            futures[resource].set_exception(
                KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed"))
            )
        return futures

    names = ("ticks", "predictions", "ticks.dlq", "tickcast-predictor-snapshots", "model-events")
    topics = {name: SimpleNamespace(partitions=dict.fromkeys(range(8)), error=None) for name in names}
    admin = SimpleNamespace(list_topics=lambda timeout: SimpleNamespace(topics=topics), describe_configs=denied)
    monkeypatch.setattr(kafka, "wait_for_broker", lambda settings, timeout_s: admin)
    result = CliRunner().invoke(app, ["topics", "check"])
    assert isinstance(result.exception, SystemExit), f"escaped: {result.exception!r}"
    assert result.exit_code == 1 and "TOPIC_AUTHORIZATION_FAILED" in result.stderr, result.output
    assert "DescribeConfigs" in result.stderr, result.stderr
