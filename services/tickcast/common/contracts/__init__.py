"""Avro contracts on the wire: where the schemas live, how ids are found, how records are framed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tickcast.common.contracts.base import SchemaError, SchemaStore, load_schema, schemas_dir
from tickcast.common.contracts.codec import AvroCodec, frame, unframe

if TYPE_CHECKING:
    from tickcast.common.security import KafkaClientSettings

__all__ = [
    "AvroCodec",
    "SchemaError",
    "SchemaStore",
    "frame",
    "load_schema",
    "open_schema_store",
    "schemas_dir",
    "unframe",
]


def open_schema_store(registry_url: str | None, security: KafkaClientSettings | None = None) -> SchemaStore:
    """The catalogue in ``schemas/`` by default, a Confluent Schema Registry when a URL is given.

    ``security`` gives the registry client its CA, client certificate and basic auth
    (:func:`tickcast.common.security.schema_registry_config`), its request timeout and how long unknown
    and failed ids are remembered (``TICKCAST_SCHEMA_REGISTRY_*``).

    >>> type(open_schema_store(None)).__name__
    'CatalogueSchemaStore'
    """
    if registry_url:
        from tickcast.common.contracts.confluent_registry import RegistrySchemaStore
        from tickcast.common.security import schema_registry_config

        if security is None:
            return RegistrySchemaStore(registry_url)
        return RegistrySchemaStore(
            registry_url,
            schema_registry_config(security, registry_url),
            request_timeout_s=security.schema_registry_timeout_s,
            unknown_id_ttl_s=security.schema_registry_unknown_id_ttl_s,
            failure_ttl_s=security.schema_registry_failure_ttl_s,
        )
    from tickcast.common.contracts.catalogue import CatalogueSchemaStore

    return CatalogueSchemaStore.from_dir(schemas_dir())
