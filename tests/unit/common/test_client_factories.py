"""Every Kafka client tickcast builds carries the TLS and SASL settings: one table over all of them, and a scan
of the source so that a client built any other way (a new ``Consumer(...)`` somewhere) fails here."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trustme

import tickcast
from tickcast.common import kafka
from tickcast.common.contracts import confluent_registry, open_schema_store
from tickcast.common.security import KafkaClientSettings

ROOT = Path(tickcast.__file__).resolve().parents[2]
PASSWORD = "s3cret-never-printed"


class Built(Exception):
    """Raised by a stand-in client on its first use: its config is recorded, nothing more is needed."""


class Recorder:
    """Stands in for confluent-kafka's Producer, Consumer, AdminClient and the Schema Registry client."""

    configs: list[tuple[str, dict[str, Any]]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        Recorder.configs.append((type(self).__name__, dict(config)))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def used(*args: Any, **kwargs: Any) -> Any:
            raise Built(name)

        return used


@pytest.fixture
def secure(tmp_path: Path) -> dict[str, Any]:
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    return {
        "bootstrap_servers": "kafka-1:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_username": "tickcast-svc",
        "sasl_password": PASSWORD,
        "ssl_ca_location": ca_file,
        "schema_registry_username": "registry-user",
        "schema_registry_password": "registry-pw",
    }


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    Recorder.configs = []
    for name in ("Producer", "Consumer", "AdminClient"):
        monkeypatch.setattr(kafka, name, type(name, (Recorder,), {}))
    # The publisher and the subscriber look their contracts' ids up while they are built.
    found = SimpleNamespace(schema_id=1)
    registry = type("SchemaRegistryClient", (Recorder,), {"lookup_schema": lambda self, subject, schema: found})
    monkeypatch.setattr(confluent_registry, "SchemaRegistryClient", registry)
    yield Recorder.configs


def build_tick_publisher(s: dict[str, Any], tmp: Path) -> None:
    from tickcast.producer.publisher import TickPublisher
    from tickcast.producer.settings import ProducerSettings

    TickPublisher(ProducerSettings(**s, schema_registry_url="https://registry:8081"))


def build_prediction_output(s: dict[str, Any], tmp: Path) -> None:
    from tickcast.predictor.output import OutputProducer

    OutputProducer(KafkaClientSettings(**s), 5)


def build_subscriber(s: dict[str, Any], tmp: Path) -> None:
    from tickcast.subscriber.reader import PredictionReader
    from tickcast.subscriber.settings import SubscriberSettings

    PredictionReader(SubscriberSettings(**s, schema_registry_url="https://registry:8081"))


def build_lag_reader(s: dict[str, Any], tmp: Path) -> None:
    from tickcast.ops.lag import LagReader
    from tickcast.ops.settings import OpsSettings

    LagReader(OpsSettings(**s), "ticks", "tickcast-predictor")


def build_dead_letter_reader(s: dict[str, Any], tmp: Path) -> None:
    from tickcast.common.settings import CommonSettings
    from tickcast.ops.dlq import read_dead_letters

    read_dead_letters(CommonSettings(**s))


def build_snapshot_restore(s: dict[str, Any], tmp: Path) -> None:
    from tickcast.predictor.restore import read_latest

    read_latest(KafkaClientSettings(**s), "predictor-snapshots", [0], 1.0)


def build_readiness_check(s: dict[str, Any], tmp: Path) -> None:
    kafka.wait_for_broker(KafkaClientSettings(**s), timeout_s=1.0)


def build_worker(s: dict[str, Any], tmp: Path) -> None:
    # The worker's confluent clients: its output producer (the restore reader is covered above).
    from tickcast.predictor.app import create_app
    from tickcast.predictor.settings import PredictorSettings

    create_app(PredictorSettings(**s, data_dir=tmp, web_port=16071))


def build_worker_ticks_fetch(s: dict[str, Any], tmp: Path) -> None:
    # Built on the worker's first poll, not by create_app.
    from tickcast.predictor.rd_fetch import ticks_fetch
    from tickcast.predictor.settings import PredictorSettings

    fetch = ticks_fetch(PredictorSettings(**s, data_dir=tmp, librdkafka_fetch=True))
    assert fetch is not None
    fetch.ensure()


def build_test_drain(s: dict[str, Any], tmp: Path) -> None:
    from tickcast.testing.drain import read_to_end

    read_to_end(KafkaClientSettings(**s), "ticks")


def build_test_flood(s: dict[str, Any], tmp: Path) -> None:
    from tickcast.common.contracts import AvroCodec, load_schema
    from tickcast.common.contracts.base import TICK_SCHEMA_FILE
    from tickcast.testing.load import flood_of_new_symbols

    codec = AvroCodec(open_schema_store(None), "ticks-value", load_schema(TICK_SCHEMA_FILE))
    flood_of_new_symbols(KafkaClientSettings(**s), "ticks", codec, 0)


def build_bench_plain_loop(s: dict[str, Any], tmp: Path) -> None:
    from bench.plain_loop import PlainLoop
    from tickcast.predictor.settings import PredictorSettings

    PlainLoop(PredictorSettings(**s), tmp / "status.json")


def build_bench_tap(s: dict[str, Any], tmp: Path) -> None:
    from bench.taps import PredictionTap
    from tickcast.testing.pipeline import Pipeline

    security = {k: str(v) for k, v in s.items() if k != "bootstrap_servers"}
    PredictionTap(Pipeline(s["bootstrap_servers"], "u", tmp, security=security))


def build_registry_admin(s: dict[str, Any], tmp: Path) -> None:
    from tickcast.common.contracts.registry_admin import RegistryAdmin
    from tickcast.common.security import KafkaClientSettings, schema_registry_config

    url = "https://registry:8081"
    RegistryAdmin(url, schema_registry_config(KafkaClientSettings(**s), url))


def build_explain(s: dict[str, Any], tmp: Path) -> None:
    from tickcast.common.security import KafkaClientSettings
    from tickcast.ops.lineage import explain

    explain(KafkaClientSettings(**s), "https://registry:8081", ("predictions", 0, 0), None, timeout_s=0.1)


#: Every place that builds a Kafka or Schema Registry client, and which clients it builds.
CLIENT_BUILDERS: dict[str, tuple[Callable[[dict[str, Any], Path], None], list[str]]] = {
    "tick publisher (produce, demo)": (build_tick_publisher, ["SchemaRegistryClient", "Producer"]),
    "prediction and dead-letter output": (build_prediction_output, ["Producer"]),
    "subscriber": (build_subscriber, ["SchemaRegistryClient", "Consumer"]),
    "ops lag / autoscale": (build_lag_reader, ["AdminClient", "Consumer"]),
    "dlq inspect": (build_dead_letter_reader, ["Consumer"]),
    "snapshot restore": (build_snapshot_restore, ["Consumer"]),
    "readiness check (every command, topics create)": (build_readiness_check, ["AdminClient"]),
    "worker": (build_worker, ["Producer"]),
    "worker's ticks fetch": (build_worker_ticks_fetch, ["Consumer"]),
    "test drain": (build_test_drain, ["Consumer"]),
    "test flood": (build_test_flood, ["Producer"]),
    "bench plain loop": (build_bench_plain_loop, ["Consumer", "Producer"]),
    "bench tap": (build_bench_tap, ["Consumer"]),
    "schema register / check against a registry": (build_registry_admin, ["SchemaRegistryClient"]),
    "explain": (build_explain, ["SchemaRegistryClient", "Consumer"]),
}


@pytest.mark.parametrize("name", list(CLIENT_BUILDERS))
def test_every_client_is_built_with_the_security_settings(
    name: str,
    secure: dict[str, Any],
    recorded: list[tuple[str, dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build, expected = CLIENT_BUILDERS[name]
    monkeypatch.syspath_prepend(str(ROOT))  # bench is a folder of the repository, not an installed package
    with suppress(Built):
        build(secure, tmp_path)
    assert [kind for kind, _ in recorded] == expected
    for kind, config in recorded:
        if kind == "SchemaRegistryClient":
            assert config["ssl.ca.location"] == str(secure["ssl_ca_location"])
            assert config["basic.auth.user.info"] == "registry-user:registry-pw"
            continue
        assert config["bootstrap.servers"] == "kafka-1:9093", kind
        assert config["security.protocol"] == "SASL_SSL", kind
        assert config["sasl.mechanism"] == "SCRAM-SHA-256", kind
        assert (config["sasl.username"], config["sasl.password"]) == ("tickcast-svc", PASSWORD), kind
        assert config["ssl.ca.location"] == str(secure["ssl_ca_location"]), kind
        assert config["ssl.endpoint.identification.algorithm"] == "https", kind


def test_faust_consumer_and_producer_log_in_like_the_other_clients(
    secure: dict[str, Any], recorded: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    from tickcast.predictor.app import create_app
    from tickcast.predictor.settings import PredictorSettings

    app, _ = create_app(PredictorSettings(**secure, data_dir=tmp_path, web_port=16072))

    async def consumer_client() -> Any:
        # aiokafka consumers must be created inside a running loop, as the worker does.
        thread = app.consumer._thread  # type: ignore[attr-defined]
        return thread._create_worker_consumer(app.transport)._client

    client = asyncio.run(consumer_client())
    assert (client._security_protocol, client._sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-256")
    assert (client._sasl_plain_username, client._sasl_plain_password) == ("tickcast-svc", PASSWORD)
    assert client._ssl_context is not None and client._ssl_context.check_hostname
    producer_auth = app.producer._settings_auth()  # type: ignore[attr-defined]
    assert producer_auth["security_protocol"] == "SASL_SSL"
    assert producer_auth["sasl_plain_username"] == "tickcast-svc"
    assert producer_auth["ssl_context"] is client._ssl_context


# ---------------------------------------------------------------- no client built any other way

#: Where each client constructor may be called: the factories that apply the settings, nowhere else.
ALLOWED_CONSTRUCTORS = {
    "Producer": {"services/tickcast/common/kafka.py"},
    "Consumer": {"services/tickcast/common/kafka.py"},
    "AdminClient": {"services/tickcast/common/kafka.py"},
    # View 2's Bytewax peer builds its client as a Bytewax user would, against the bench's plaintext registry stub.
    "SchemaRegistryClient": {"services/tickcast/common/contracts/confluent_registry.py", "bench/peers/bytewax_peer.py"},
    "AIOKafkaClient": set(),
    "AIOKafkaConsumer": set(),
    "AIOKafkaProducer": set(),
    "AIOKafkaAdminClient": set(),
    "create_conn": {"services/tickcast/predictor/broker_login.py"},
    # The naive Faust peer of the bench is written as Faust's docs have it, on the bench's plaintext broker.
    "App": {"bench/peers/faust_peer.py"},
    "TunedApp": {"services/tickcast/predictor/app.py"},
}


def python_sources() -> list[Path]:
    return sorted([*(ROOT / "services").rglob("*.py"), *(ROOT / "bench").rglob("*.py")])


def client_constructions(path: Path) -> Iterator[tuple[str, int]]:
    """(constructor name, line) of every call to a Kafka client constructor, and every hand-written config."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ALLOWED_CONSTRUCTORS:
                yield name, node.lineno
        elif isinstance(node, ast.Constant) and node.value == "bootstrap.servers":
            yield "a config with 'bootstrap.servers'", node.lineno


def test_clients_are_built_only_by_the_factories() -> None:
    strays = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in python_sources()
        for name, line in client_constructions(path)
        if str(path.relative_to(ROOT)) not in ALLOWED_CONSTRUCTORS.get(name, {"services/tickcast/common/kafka.py"})
    ]
    assert not strays, (
        "build Kafka clients with tickcast.common.kafka.new_producer/new_consumer/new_admin (they apply the TLS and "
        "SASL settings), and add the new client to CLIENT_BUILDERS above:\n" + "\n".join(strays)
    )


def test_the_scan_sees_a_stray_client(tmp_path: Path) -> None:
    stray = tmp_path / "stray.py"
    stray.write_text('from confluent_kafka import Consumer\nc = Consumer({"bootstrap.servers": "k:1"})\n')
    assert sorted(client_constructions(stray)) == [("Consumer", 2), ("a config with 'bootstrap.servers'", 2)]
