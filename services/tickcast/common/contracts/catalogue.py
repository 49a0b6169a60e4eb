"""Schema ids from ``schemas/catalogue.json``: no server needed, same ids on every machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tickcast.common.contracts.base import SchemaError, SchemaStore, canonical, load_schema


class CatalogueSchemaStore(SchemaStore):
    """Ids fixed in a versioned catalogue file that ships with the contracts.

    >>> from tickcast.common.contracts.base import schemas_dir, load_schema
    >>> store = CatalogueSchemaStore.from_dir(schemas_dir())
    >>> store.register("ticks-value", load_schema("tick.avsc"))
    1
    >>> store.lookup(999) is None
    True
    """

    def __init__(self, entries: dict[int, tuple[str, dict[str, Any]]]) -> None:
        self._by_id = {schema_id: schema for schema_id, (_, schema) in entries.items()}
        self._by_text = {canonical(schema): schema_id for schema_id, (_, schema) in entries.items()}

    @classmethod
    def from_dir(cls, directory: Path) -> CatalogueSchemaStore:
        path = directory / "catalogue.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            entries = {
                int(item["id"]): (str(item["subject"]), load_schema(str(item["file"]), directory))
                for item in raw["schemas"]
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SchemaError(f"schema catalogue {path} is unreadable: {exc}") from exc
        return cls(entries)

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        # Match on the schema alone: a topic renamed by settings (tests do this) still
        # carries the contract of its role, under the same id.
        schema_id = self._by_text.get(canonical(schema))
        if schema_id is not None:
            return schema_id
        raise SchemaError(
            f"schema {schema.get('namespace')}.{schema.get('name')} for subject {subject!r} is not in the "
            "catalogue; add it to schemas/catalogue.json with a new id"
        )

    def lookup(self, schema_id: int) -> dict[str, Any] | None:
        return self._by_id.get(schema_id)
