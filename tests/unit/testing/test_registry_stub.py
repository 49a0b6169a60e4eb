"""The catalogue's registry stub against confluent-kafka's own Schema Registry client and Avro serde."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE, TICK_SCHEMA_FILE
from tickcast.testing.registry_stub import CatalogueRegistry

TICK = load_schema(TICK_SCHEMA_FILE)
PREDICTION = load_schema(PREDICTION_SCHEMA_FILE)
#: The catalogue's ids (schemas/catalogue.json) of the tick and current prediction contracts.
TICK_ID, PREDICTION_ID = 1, 7


@pytest.fixture
def client() -> Iterator[SchemaRegistryClient]:
    with CatalogueRegistry() as registry:
        yield SchemaRegistryClient({"url": registry.url})


def prediction() -> dict[str, object]:
    return {
        "symbol": "SPY", "event_time": datetime(2026, 12, 3, tzinfo=UTC), "last_price": 1.5,
        "predicted_return_bps": 0.0, "predicted_price": 1.5, "horizon_ticks": 1, "status": "READY", "flags": [],
        "model_name": "linear", "model_version": "1", "ticks_learned": 3, "abs_error_ewm_bps": None,
        "source_topic": "ticks-x", "source_partition": 2, "source_offset": 9, "tick_produced_at": 5,
        "predicted_at": 6, "worker": "w",
    }  # fmt: skip


def test_an_avro_serializer_frames_with_the_catalogue_id_and_tickcast_reads_it(client: SchemaRegistryClient) -> None:
    # A renamed topic (the bench's are) still gets its role's id: the stub matches on the schema alone.
    serialize = AvroSerializer(client, json.dumps(PREDICTION))
    data = serialize(prediction(), SerializationContext("predictions-bench-1", MessageField.VALUE))
    assert data is not None
    assert data[:5] == b"\x00" + PREDICTION_ID.to_bytes(4, "big")
    codec = AvroCodec(open_schema_store(None), "predictions-value", PREDICTION)
    assert codec.decode(data)["source_offset"] == 9


def test_an_avro_deserializer_reads_what_tickcast_writes(client: SchemaRegistryClient) -> None:
    codec = AvroCodec(open_schema_store(None), "ticks-value", TICK)
    data = codec.encode({"symbol": "SPY", "price": 1.5, "size": 10.0, "event_time": 86_400_000})
    tick = AvroDeserializer(client)(data, SerializationContext("ticks-bench-1", MessageField.VALUE))
    assert tick["symbol"] == "SPY"
    assert tick["event_time"] == datetime(1970, 1, 2, tzinfo=UTC)  # the logical type, as a user gets it


def test_a_lookup_without_auto_registration_finds_the_catalogue_id(client: SchemaRegistryClient) -> None:
    assert client.lookup_schema("predictions-value", Schema(json.dumps(PREDICTION), "AVRO")).schema_id == PREDICTION_ID
    assert client.get_schema(TICK_ID).schema_str is not None


def test_a_schema_the_catalogue_lacks_is_refused_not_registered(client: SchemaRegistryClient) -> None:
    other = json.dumps({"type": "record", "name": "Other", "fields": [{"name": "x", "type": "long"}]})
    with pytest.raises(SchemaRegistryError) as registering:
        client.register_schema("other-value", Schema(other, "AVRO"))
    assert registering.value.http_status_code == 422
    with pytest.raises(SchemaRegistryError) as looking_up:
        client.lookup_schema("other-value", Schema(other, "AVRO"))
    assert looking_up.value.http_status_code == 404
    with pytest.raises(SchemaRegistryError) as unknown:
        client.get_schema(999)
    assert unknown.value.error_code == 40403
