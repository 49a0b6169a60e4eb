"""tickcast's own settings rules: the TICKCAST_ prefix every service shares, our validators, frozen settings,
and a bad value reported as one line by the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from tickcast.client.settings import ClientSettings
from tickcast.common.settings import CommonSettings
from tickcast.gateway.settings import GatewaySettings
from tickcast.ops.settings import OpsSettings
from tickcast.predictor.settings import PredictorSettings
from tickcast.producer.settings import ProducerSettings
from tickcast.subscriber.settings import SubscriberSettings
from tickcast.testing.environment import base_env

SERVICE_SETTINGS = [
    PredictorSettings,
    ProducerSettings,
    SubscriberSettings,
    OpsSettings,
    GatewaySettings,
    ClientSettings,
]


def test_every_service_settings_class_is_listed_here() -> None:
    assert set(CommonSettings.__subclasses__()) == set(SERVICE_SETTINGS)


@pytest.mark.parametrize("cls", SERVICE_SETTINGS, ids=lambda cls: cls.__name__)
def test_every_service_reads_the_shared_names_from_tickcast_variables(
    cls: type[CommonSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKCAST_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("TICKCAST_TICKS_TOPIC", "equities.ticks")
    monkeypatch.setenv("TICKCAST_PARTITIONS", "12")
    monkeypatch.setenv("PREDICTIONS_TOPIC", "unprefixed-is-not-ours")
    settings = cls()
    assert settings.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert (settings.ticks_topic, settings.partitions) == ("equities.ticks", 12)
    assert settings.predictions_topic == "predictions"


@pytest.mark.parametrize("cls", SERVICE_SETTINGS, ids=lambda cls: cls.__name__)
def test_service_settings_cannot_change_once_loaded(cls: type[CommonSettings]) -> None:
    # Workers hand one settings object to threads and callbacks: none of them may see it change.
    settings = cls(bootstrap_servers="k:1")
    with pytest.raises(ValidationError, match="frozen"):
        settings.partitions = 4  # type: ignore[misc]


@pytest.mark.parametrize("servers", ["kafka", "kafka:", ":9092", "kafka:port", "k:1,k2"])
def test_bootstrap_servers_must_be_host_port_pairs(servers: str) -> None:
    with pytest.raises(ValidationError, match=r"expected host:port\[,host:port\.\.\.\]"):
        CommonSettings(bootstrap_servers=servers)


def test_bootstrap_servers_accept_a_list_and_ipv6() -> None:
    assert CommonSettings(bootstrap_servers="a:1, b:2,[::1]:9092").bootstrap_servers == "a:1, b:2,[::1]:9092"


@pytest.mark.parametrize("field", ["ticks_topic", "predictions_topic", "dlq_topic"])
def test_topic_names_follow_kafkas_rules(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        CommonSettings(bootstrap_servers="k:1", **{field: "ticks and more"})  # type: ignore[arg-type]


def test_only_registered_models_are_accepted() -> None:
    with pytest.raises(ValidationError, match=r"unknown model 'gpt'; choose one of: .*linear"):
        PredictorSettings(bootstrap_servers="k:1", model="gpt")


def test_the_snapshots_topic_follows_the_group_unless_set() -> None:
    assert PredictorSettings(bootstrap_servers="k:1", group_id="g2").snapshots_topic_name == "g2-snapshots"
    assert PredictorSettings(bootstrap_servers="k:1", snapshots_topic="s").snapshots_topic_name == "s"


def test_a_bad_value_is_one_line_naming_the_variable_not_a_traceback() -> None:
    env = {**base_env(), "TICKCAST_PARTITIONS": "0", "TICKCAST_BOOTSTRAP_SERVERS": "kafka"}
    done = subprocess.run(
        [sys.executable, "-m", "tickcast", "worker"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tickcast: error: invalid configuration: ")
    assert "TICKCAST_PARTITIONS: Input should be greater than or equal to 1 (got '0')" in lines[0]
    assert "TICKCAST_BOOTSTRAP_SERVERS: expected host:port" in lines[0]
