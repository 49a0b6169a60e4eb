"""Declared topics on the session broker: `topics create` applies the configs, `topics check` finds drift."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from tickcast.broker.embedded import EmbeddedBroker
from tickcast.common.asyncapi import asyncapi_document
from tickcast.common.contracts.base import schemas_dir
from tickcast.common.contracts.catalogue import read_catalogue
from tickcast.common.kafka import ensure_topics, topic_partitions
from tickcast.testing.environment import run_tickcast
from tickcast.testing.pipeline import Pipeline

pytestmark = pytest.mark.integration


def env(broker: EmbeddedBroker, unique: str) -> dict[str, str]:
    return {
        "TICKCAST_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "TICKCAST_TICKS_TOPIC": f"gov-{unique}-ticks",
        "TICKCAST_PREDICTIONS_TOPIC": f"gov-{unique}-predictions",
        "TICKCAST_DLQ_TOPIC": f"gov-{unique}-dlq",
        "TICKCAST_GROUP_ID": f"gov-{unique}",
        "TICKCAST_PARTITIONS": "3",
        "TICKCAST_LOG_FORMAT": "console",
    }


def described(bootstrap_servers: str, topic: str) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=10)
    return {name: entry.value for name, entry in entries.items()}


def test_topics_create_applies_the_declared_configs_and_check_finds_none_missing(
    broker: EmbeddedBroker, unique: str
) -> None:
    settings = env(broker, unique)
    created = run_tickcast("topics", "create", env=settings)
    assert created.returncode == 0, created.stderr
    assert f"gov-{unique}-snapshots: created" in created.stdout
    # Tansu stores the configs a topic is created with and describes exactly those (it enforces none of them).
    assert described(broker.bootstrap_servers, f"gov-{unique}-ticks") == {
        "cleanup.policy": "delete", "retention.ms": str(7 * 86_400_000), "min.insync.replicas": "1"
    }  # fmt: skip
    assert described(broker.bootstrap_servers, f"gov-{unique}-dlq")["retention.ms"] == str(30 * 86_400_000)
    assert described(broker.bootstrap_servers, f"gov-{unique}-snapshots")["cleanup.policy"] == "compact"
    checked = run_tickcast("topics", "check", env=settings)
    assert checked.returncode == 0, checked.stderr
    assert "embedded broker (Tansu, memory only): it accepts but does not enforce" in checked.stdout
    assert "topics: as declared" in checked.stdout


def test_topics_check_reports_a_missing_topic_and_a_partition_count_drift(broker: EmbeddedBroker, unique: str) -> None:
    settings = env(broker, unique)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    # Created by hand, without configs and with 2 partitions instead of 3; the other topics do not exist.
    ensure_topics(admin, [settings["TICKCAST_TICKS_TOPIC"]], 2, 1)
    checked = run_tickcast("topics", "check", env=settings)
    assert checked.returncode == 1
    assert f"DRIFT gov-{unique}-ticks: partitions is 2, declared 3" in checked.stderr
    assert f"DRIFT gov-{unique}-predictions: the topic is missing, declared present" in checked.stderr
    # Configs the embedded broker does not report are not drift there, only noted.
    assert f"ignored by the embedded broker: gov-{unique}-ticks: retention.ms is not reported" in checked.stdout


def test_the_asyncapi_documents_topics_are_the_running_ones(pipeline: Pipeline) -> None:
    document = asyncapi_document(pipeline.topic_specs(), read_catalogue(schemas_dir()), pipeline.bootstrap_servers)
    admin = AdminClient({"bootstrap.servers": pipeline.bootstrap_servers})
    for role, channel in document["channels"].items():
        if role == "snapshots":
            continue  # made by the first worker, which this test does not start
        kafka = channel["bindings"]["kafka"]
        assert topic_partitions(admin, channel["address"]) == kafka["partitions"], channel["address"]
        running = described(pipeline.bootstrap_servers, channel["address"])
        assert running["cleanup.policy"].split(",") == kafka["topicConfiguration"]["cleanup.policy"]
        assert int(running["retention.ms"]) == kafka["topicConfiguration"]["retention.ms"]
