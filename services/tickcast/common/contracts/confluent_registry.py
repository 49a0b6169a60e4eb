"""Schema ids from a Confluent Schema Registry (``TICKCAST_SCHEMA_REGISTRY_URL``)."""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from tickcast.common.contracts.base import SchemaError, SchemaStore


class RegistrySchemaStore(SchemaStore):
    """Registers contracts under ``<topic>-value`` (TopicNameStrategy) and resolves ids through the registry.

    The client caches ids and schemas, so the registry is asked once per schema per process.
    """

    def __init__(self, url: str) -> None:
        self._client = SchemaRegistryClient({"url": url})
        self._url = url

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        try:
            return int(self._client.register_schema(subject, Schema(json.dumps(schema), "AVRO")))
        except (SchemaRegistryError, OSError) as exc:
            raise SchemaError(f"schema registry {self._url} refused subject {subject!r}: {exc}") from exc

    def lookup(self, schema_id: int) -> dict[str, Any] | None:
        try:
            found = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return None
            raise SchemaError(f"schema registry {self._url} failed for id {schema_id}: {exc}") from exc
        loaded: dict[str, Any] = json.loads(found.schema_str or "null")
        return loaded
