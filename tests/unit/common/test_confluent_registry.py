"""The schema-registry store against a fake registry on loopback: bounded waits, unknown ids asked once per TTL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tickcast.common.contracts import AvroCodec, frame, load_schema
from tickcast.common.contracts.base import TICK_SCHEMA_FILE, SchemaError
from tickcast.common.contracts.confluent_registry import RegistrySchemaStore
from tickcast.common.errors import Reason, Rejected

TICK_SCHEMA = load_schema(TICK_SCHEMA_FILE)
#: An id the fake registry holds a Protobuf schema under (another producer's, on the same registry).
PROTOBUF_ID = 8


class FakeRegistry(ThreadingHTTPServer):
    """Knows schema id 1 (the tick contract); answers 404 for any other id, or hangs while ``hang`` is set."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeRegistryHandler)
        self.lookups: list[int] = []
        self.hang = threading.Event()
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeRegistryHandler(BaseHTTPRequestHandler):
    server: FakeRegistry

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output clean

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        schema_id = int(self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1])
        self.server.lookups.append(schema_id)
        if self.server.hang.is_set():
            self.server.release.wait(30)  # a registry that accepted the connection and never answers
            return
        if schema_id == 1:
            self._answer(200, {"schema": json.dumps(TICK_SCHEMA)})
        elif schema_id == PROTOBUF_ID:
            self._answer(200, {"schemaType": "PROTOBUF", "schema": 'syntax = "proto3"; message T { string s = 1; }'})
        else:
            self._answer(404, {"error_code": 40403, "message": "Schema not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        self._answer(200, {"id": 1})


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_unknown_id_is_asked_once_per_ttl(registry: FakeRegistry) -> None:
    clock = FakeClock()
    store = RegistrySchemaStore(registry.url, unknown_id_ttl_s=30.0, clock=clock)
    assert [store.lookup(424242) for _ in range(50)] == [None] * 50
    assert registry.lookups == [424242], "the registry was asked again for an id it said it does not know"
    clock.now += 31.0
    assert store.lookup(424242) is None
    assert registry.lookups == [424242, 424242], "after the TTL the id may have been registered: ask again"
    assert store.lookup(1) == TICK_SCHEMA


def test_random_ids_do_not_grow_the_negative_cache_without_bound(registry: FakeRegistry) -> None:
    store = RegistrySchemaStore(registry.url, unknown_id_cache_size=16)
    for schema_id in range(1000, 1040):
        assert store.lookup(schema_id) is None
    assert store.unknown_ids_cached <= 16


def test_a_hung_registry_costs_at_most_the_request_timeout(registry: FakeRegistry) -> None:
    store = RegistrySchemaStore(registry.url, request_timeout_s=0.5)
    registry.hang.set()
    started = time.monotonic()
    with pytest.raises(SchemaError, match="did not answer"):
        store.lookup(7)
    assert time.monotonic() - started < 2.0, "a lookup outlived its timeout (retries, or no timeout at all)"
    # Right after, the same id fails at once instead of waiting again: the loop keeps moving.
    started = time.monotonic()
    with pytest.raises(SchemaError):
        store.lookup(7)
    assert time.monotonic() - started < 0.1


def test_the_codec_dead_letters_a_record_whose_schema_the_registry_cannot_give(registry: FakeRegistry) -> None:
    codec = AvroCodec(RegistrySchemaStore(registry.url, request_timeout_s=0.5), "ticks-value", TICK_SCHEMA)
    good = codec.encode({"symbol": "SPY", "price": 1.0, "size": 1.0, "event_time": 0})
    registry.hang.set()
    for schema_id in (99, 100):
        with pytest.raises(Rejected) as caught:
            codec.decode(frame(schema_id, good[5:]))
        assert caught.value.reason == Reason.UNKNOWN_SCHEMA and "registry" in caught.value.message
    assert codec.decode(good)["symbol"] == "SPY", "the codec's own schema needs no registry"


def test_the_registry_timeouts_come_from_the_settings(registry: FakeRegistry) -> None:
    from tickcast.common.contracts import open_schema_store
    from tickcast.common.settings import CommonSettings

    # A TTL of 0 remembers nothing: each lookup asks again (the default, 60 s, would ask once).
    settings = CommonSettings(schema_registry_timeout_s=0.3, schema_registry_unknown_id_ttl_s=0.0)
    store = open_schema_store(registry.url, settings)
    assert [store.lookup(424242) for _ in range(3)] == [None] * 3
    assert registry.lookups == [424242] * 3, "TICKCAST_SCHEMA_REGISTRY_UNKNOWN_ID_TTL_S was not applied"
    registry.hang.set()
    started = time.monotonic()
    with pytest.raises(SchemaError, match="did not answer"):
        store.lookup(7)
    assert time.monotonic() - started < 1.5, "TICKCAST_SCHEMA_REGISTRY_TIMEOUT_S (0.3 s) was not applied"


def test_a_registry_config_the_client_refuses_is_a_schema_error_without_credentials() -> None:
    # confluent-kafka refuses credentials both in the URL and in basic auth (TICKCAST_SCHEMA_REGISTRY_USERNAME) with a
    # ValueError: before, that escaped the CLI's one-line errors as a traceback at every service's start.
    from tickcast.common.contracts import open_schema_store
    from tickcast.common.security import KafkaClientSettings

    security = KafkaClientSettings(schema_registry_username="sr", schema_registry_password="pw-secret")
    with pytest.raises(SchemaError, match="userinfo credentials in the URL") as caught:
        open_schema_store("https://sr:url-secret@registry:8081", security)
    assert "url-secret" not in str(caught.value) and "pw-secret" not in str(caught.value)


def test_a_record_whose_id_names_a_protobuf_schema_is_rejected_not_a_crash(registry: FakeRegistry) -> None:
    # A producer with Confluent's Protobuf serializer writes the same magic byte and id framing to the topic.
    codec = AvroCodec(RegistrySchemaStore(registry.url), "ticks-value", TICK_SCHEMA)
    try:
        with pytest.raises(Rejected) as caught:
            codec.decode(frame(PROTOBUF_ID, b"\x00\x0a\x03SPY"))
    except ValueError as exc:
        raise AssertionError(f"one Protobuf record escaped the codec: {type(exc).__name__}: {exc}") from exc
    assert caught.value.reason == Reason.UNKNOWN_SCHEMA and "PROTOBUF" in caught.value.message, caught.value
