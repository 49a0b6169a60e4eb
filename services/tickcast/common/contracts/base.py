"""The schema-store interface: map (subject, schema) to a wire id and back.

Backends: :mod:`.catalogue` (ids fixed in ``schemas/catalogue.json``, no server)
and :mod:`.confluent_registry` (a Confluent Schema Registry).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import tickcast

TICK_SCHEMA_FILE = "tick.avsc"
PREDICTION_SCHEMA_FILE = "prediction.avsc"


class SchemaError(Exception):
    """A contract problem: missing file, unknown subject, schema not registered under that id."""


class SchemaStore(ABC):
    """Maps a subject's schema to the 4-byte id written after the magic byte, and an id back to a schema."""

    @abstractmethod
    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """Id under which ``schema`` is (or becomes) known for ``subject``."""

    @abstractmethod
    def lookup(self, schema_id: int) -> dict[str, Any] | None:
        """The writer schema with this id, or None if the store does not know it."""


def schemas_dir() -> Path:
    """Directory of the ``.avsc`` contracts: inside the wheel, or ``schemas/`` of a source checkout.

    >>> (schemas_dir() / "tick.avsc").is_file()
    True
    """
    packaged = Path(tickcast.__file__).parent / "_schemas"
    if packaged.is_dir():
        return packaged
    checkout = Path(tickcast.__file__).resolve().parents[2] / "schemas"
    if checkout.is_dir():
        return checkout
    raise SchemaError(f"no Avro contracts found at {packaged} or {checkout}")


def load_schema(filename: str, directory: Path | None = None) -> dict[str, Any]:
    """Read one ``.avsc`` contract as JSON.

    >>> load_schema("tick.avsc")["name"]
    'Tick'
    """
    path = (directory or schemas_dir()) / filename
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SchemaError(f"contract {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise SchemaError(f"contract {path} is not valid JSON: {exc}") from exc
    return loaded


def canonical(schema: dict[str, Any]) -> str:
    """Stable text of a schema, for equality checks (key order and whitespace do not matter).

    >>> canonical({"b": 1, "a": 2}) == canonical({"a": 2, "b": 1})
    True
    """
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))
