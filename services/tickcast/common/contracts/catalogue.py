"""Schema ids from ``schemas/catalogue.json``: no server needed, same ids on every machine.

The catalogue also declares each subject's compatibility mode (``subjects``; BACKWARD_TRANSITIVE when a
subject is not listed) and the fingerprint of every id's schema, so that an id whose file was edited in
place (which would make old records decode with the wrong writer schema) is caught by ``tickcast schema check``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro

from tickcast.common.contracts.base import SchemaError, SchemaStore, canonical, load_schema
from tickcast.common.contracts.compatibility import DEFAULT_MODE, Mode


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One schema id: its subject, file, schema and the fingerprint the catalogue recorded (if any)."""

    schema_id: int
    subject: str
    file: str
    schema: dict[str, Any]
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every id of ``catalogue.json``, by subject in id order (= version order), and each subject's mode."""

    entries: tuple[CatalogueEntry, ...]
    modes: dict[str, Mode]

    def subjects(self) -> dict[str, list[CatalogueEntry]]:
        """Subject -> its versions, oldest first.

        >>> from tickcast.common.contracts.base import schemas_dir
        >>> [e.schema_id for e in read_catalogue(schemas_dir()).subjects()["snapshots-value"]]
        [3, 4, 5]
        """
        by_subject: dict[str, list[CatalogueEntry]] = {}
        for entry in sorted(self.entries, key=lambda e: e.schema_id):
            by_subject.setdefault(entry.subject, []).append(entry)
        return by_subject

    def mode(self, subject: str) -> Mode:
        return self.modes.get(subject, DEFAULT_MODE)


def read_catalogue(directory: Path) -> Catalogue:
    """Read ``catalogue.json`` and the contracts it names; :class:`SchemaError` if anything is unreadable."""
    path = directory / "catalogue.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = tuple(
            CatalogueEntry(
                int(item["id"]),
                str(item["subject"]),
                str(item["file"]),
                load_schema(str(item["file"]), directory),
                item.get("fingerprint"),
            )
            for item in raw["schemas"]
        )
        modes = {str(s): Mode(str(v["compatibility"])) for s, v in raw.get("subjects", {}).items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SchemaError(f"schema catalogue {path} is unreadable: {exc}") from exc
    for entry in entries:
        try:
            fastavro.parse_schema(entry.schema, _write_hint=False)
        except Exception as exc:  # fastavro raises several types (UnknownType, SchemaParseException, ...)
            raise SchemaError(f"contract {directory / entry.file} is not a valid Avro schema: {exc}") from exc
    return Catalogue(entries, modes)


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
        catalogue = read_catalogue(directory)
        return cls({e.schema_id: (e.subject, e.schema) for e in catalogue.entries})

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
