"""Avro contracts on the wire: where the schemas live, how ids are found, how records are framed."""

from __future__ import annotations

from tickcast.common.contracts.base import SchemaError, SchemaStore, load_schema, schemas_dir
from tickcast.common.contracts.codec import AvroCodec, frame, unframe

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


def open_schema_store(registry_url: str | None) -> SchemaStore:
    """The catalogue in ``schemas/`` by default, a Confluent Schema Registry when a URL is given.

    >>> type(open_schema_store(None)).__name__
    'CatalogueSchemaStore'
    """
    if registry_url:
        from tickcast.common.contracts.confluent_registry import RegistrySchemaStore

        return RegistrySchemaStore(registry_url)
    from tickcast.common.contracts.catalogue import CatalogueSchemaStore

    return CatalogueSchemaStore.from_dir(schemas_dir())
