"""Against a fake Schema Registry on loopback: ask before registering, register only explicitly, never auto-register."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tickcast.common.contracts import AvroCodec, load_schema
from tickcast.common.contracts.base import SchemaError
from tickcast.common.contracts.compatibility import Mode
from tickcast.common.contracts.confluent_registry import RegistrySchemaStore
from tickcast.common.contracts.registry_admin import RegistryAdmin
from tickcast.testing.environment import run_tickcast

TICK = load_schema("tick.avsc")


class Registry(ThreadingHTTPServer):
    """Records every request; answers compatibility with ``verdict``, lookups from ``registered``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.verdict: tuple[int, dict[str, Any]] = (200, {"is_compatible": True, "messages": []})
        self.registered: dict[str, int] = {}
        self.authorizations: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def paths(self, method: str) -> list[str]:
        return [path for m, path, _ in self.requests if m == method]


class Handler(BaseHTTPRequestHandler):
    server: Registry

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        loaded: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
        return loaded

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.server.authorizations.append(self.headers.get("Authorization"))
        body = self._body()
        self.server.requests.append(("POST", self.path, body))
        path = self.path.split("?")[0]
        subject = path.split("/")[3] if path.startswith("/compatibility/") else path.split("/")[2]
        if path.startswith("/compatibility/"):
            self._answer(*self.server.verdict)
        elif path.endswith("/versions"):  # register
            self.server.registered[subject] = 41
            self._answer(200, {"id": 41})
        elif subject in self.server.registered:  # look up a schema under a subject
            self._answer(200, {"subject": subject, "id": self.server.registered[subject], "version": 1,
                               "schema": body["schema"]})  # fmt: skip
        else:
            self._answer(404, {"error_code": 40403, "message": "Schema not found"})

    def do_PUT(self) -> None:
        body = self._body()
        self.server.requests.append(("PUT", self.path, body))
        self._answer(200, body)


@pytest.fixture
def registry() -> Iterator[Registry]:
    server = Registry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_codec_never_registers_a_schema_it_does_not_find(registry: Registry) -> None:
    store = RegistrySchemaStore(registry.url, request_timeout_s=2.0)
    with pytest.raises(SchemaError, match="tickcast schema register"):
        AvroCodec(store, "ticks-value", TICK)
    assert registry.paths("POST") == ["/subjects/ticks-value?normalize=False&deleted=False"]


def test_a_codec_uses_the_id_registered_explicitly(registry: Registry) -> None:
    registry.registered["ticks-value"] = 41
    codec = AvroCodec(RegistrySchemaStore(registry.url, request_timeout_s=2.0), "ticks-value", TICK)
    assert codec.schema_id == 41
    assert not [p for p in registry.paths("POST") if p.split("?")[0].endswith("/versions")], "it registered"


def test_ask_uses_the_verbose_compatibility_endpoint_and_returns_its_reasons(registry: Registry) -> None:
    registry.verdict = (200, {"is_compatible": False, "messages": ["READER_FIELD_MISSING_DEFAULT_VALUE venue"]})
    verdict = RegistryAdmin(registry.url).ask("ticks-value", TICK)
    assert (verdict.compatible, verdict.messages) == (False, ["READER_FIELD_MISSING_DEFAULT_VALUE venue"])
    _, path, body = registry.requests[-1]
    assert path == "/compatibility/subjects/ticks-value/versions/latest?verbose=true"
    assert json.loads(body["schema"]) == TICK and body["schemaType"] == "AVRO"


def test_a_subject_the_registry_does_not_know_yet_is_a_first_version(registry: Registry) -> None:
    registry.verdict = (404, {"error_code": 40401, "message": "Subject 'ticks-value' not found."})
    verdict = RegistryAdmin(registry.url).ask("ticks-value", TICK)
    assert verdict.compatible and verdict.first_version


def test_register_sets_the_declared_mode_then_registers(registry: Registry) -> None:
    assert RegistryAdmin(registry.url).register("ticks-value", TICK, Mode.FULL_TRANSITIVE) == 41
    assert registry.requests[0][:2] == ("PUT", "/config/ticks-value")
    assert registry.requests[0][2] == {"compatibility": "FULL_TRANSITIVE"}


def test_schema_check_fails_with_the_registrys_reason(registry: Registry) -> None:
    registry.verdict = (200, {"is_compatible": False, "messages": ["TYPE_MISMATCH at /fields/1"]})
    result = run_tickcast("schema", "check", env={"TICKCAST_SCHEMA_REGISTRY_URL": registry.url})
    assert result.returncode == 1, result.stderr
    assert "ticks-value: registry says tick.avsc is incompatible: TYPE_MISMATCH at /fields/1" in result.stderr


def test_schema_register_refuses_what_the_registry_rejects(registry: Registry) -> None:
    registry.verdict = (200, {"is_compatible": False, "messages": ["TYPE_MISMATCH"]})
    result = run_tickcast("schema", "register", env={"TICKCAST_SCHEMA_REGISTRY_URL": registry.url})
    assert result.returncode == 1 and "the registry refuses tick.avsc: TYPE_MISMATCH" in result.stderr
    assert not [p for p in registry.paths("POST") if p.split("?")[0].endswith("/versions")], "it registered anyway"


def test_schema_register_registers_every_contract(registry: Registry) -> None:
    result = run_tickcast("schema", "register", env={"TICKCAST_SCHEMA_REGISTRY_URL": registry.url})
    assert result.returncode == 0, result.stderr
    assert set(registry.registered) == {
        "ticks-value", "predictions-value", "model-events-value", "ticks.dlq.receipts-value"
    }  # fmt: skip


def test_a_worker_finds_every_contract_it_writes_once_schema_register_ran(registry: Registry) -> None:
    # The worker also writes model events: schema register left model-events-value out, so on a real registry
    # every worker stopped at start with "not registered under subject 'model-events-value'".
    from tickcast.predictor.runtime import TickHandler
    from tickcast.predictor.settings import PredictorSettings

    result = run_tickcast("schema", "register", env={"TICKCAST_SCHEMA_REGISTRY_URL": registry.url})
    assert result.returncode == 0, result.stderr
    handler = TickHandler(PredictorSettings(bootstrap_servers="k:1", schema_registry_url=registry.url))
    assert handler.model_event_codec.schema_id == 41


def test_a_gateway_whose_subject_is_not_registered_stops_before_serving(registry: Registry) -> None:
    # Kubernetes starts the gateway alongside the job that runs `schema register`. The codec was opened in the
    # gateway's Kafka thread: the thread died with a traceback and the replica served 503 until its probe gave up.
    from tickcast.gateway.settings import GatewaySettings
    from tickcast.gateway.source import KafkaSource

    settings = GatewaySettings(bootstrap_servers="k:1", schema_registry_url=registry.url)
    with pytest.raises(SchemaError, match="not registered under subject 'predictions-value'"):
        KafkaSource(settings)
    assert run_tickcast("schema", "register", env={"TICKCAST_SCHEMA_REGISTRY_URL": registry.url}).returncode == 0
    assert KafkaSource(settings)._codec.schema_id == 41


def test_credentials_in_the_registry_url_are_sent_as_basic_auth_not_as_part_of_the_host(registry: Registry) -> None:
    # The Schema Registry client (workers, producers) takes user:password@ from the URL; the compatibility
    # check of schema check / schema register must reach the same registry with the same URL.
    url = registry.url.replace("://", "://svc%40corp:p%40ss@")
    verdict = RegistryAdmin(url).ask("ticks-value", TICK)
    assert verdict.compatible, verdict
    assert registry.authorizations == ["Basic " + base64.b64encode(b"svc@corp:p@ss").decode()]
