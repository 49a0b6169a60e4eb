"""Compatibility of two versions of a contract, under a Confluent Schema Registry compatibility mode.

The modes mean what the registry means by them:

- BACKWARD: the new schema reads what the previous version wrote (upgrade consumers first);
- FORWARD: the previous version reads what the new schema writes (upgrade producers first);
- FULL: both; NONE: no check;
- ``*_TRANSITIVE``: the same against every earlier version, not only the previous one.

Two independent judges: Avro's resolution rules (:mod:`.resolution`, which give the reasons) and the
real codec, which writes sample records (:mod:`.samples`) with the writer schema and reads them with the
reader schema. fastavro has reported false "incompatible" results when a named type is defined inline in
one schema and referred to by name in the other, or moved to another field (fastavro issues #780, #896):
when the codec fails that way on schemas that refer to a named type by name, and the rules (which compare
named types written out in full) find nothing, the failure is reported as a note, not a breach.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import fastavro

from tickcast.common.contracts.codec import without_logical_types
from tickcast.common.contracts.names import refers_by_name
from tickcast.common.contracts.resolution import resolution_problems
from tickcast.common.contracts.samples import sample_records


class Mode(StrEnum):
    """A subject's compatibility mode, spelled as the Schema Registry spells it."""

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        """Checked against every earlier version (True) or only the previous one."""
        return self.value.endswith("_TRANSITIVE")

    @property
    def directions(self) -> tuple[str, ...]:
        """'backward' (new reads old), 'forward' (old reads new), or both.

        >>> Mode.FULL_TRANSITIVE.directions, Mode.NONE.directions
        (('backward', 'forward'), ())
        """
        if self is Mode.NONE:
            return ()
        if self.value.startswith("FULL"):
            return ("backward", "forward")
        return ("backward",) if self.value.startswith("BACKWARD") else ("forward",)


DEFAULT_MODE = Mode.BACKWARD_TRANSITIVE


@dataclass(frozen=True, slots=True)
class Breach:
    """One reason why ``new`` is not compatible with ``old`` in one direction, found by one judge."""

    direction: str
    judge: str
    reason: str
    blocking: bool = True
    """False for a codec failure judged a known fastavro false negative (see the module's doc)."""

    def __str__(self) -> str:
        return f"[{self.direction}, {self.judge}{'' if self.blocking else ', note'}] {self.reason}"


def decoding_problems(
    writer: Any, reader: Any, writer_label: str = "writer", reader_label: str = "reader"
) -> list[str]:
    """Write sample records with ``writer`` and read them with ``reader`` through fastavro; say what failed.

    >>> old = {"type": "record", "name": "T", "fields": [{"name": "a", "type": "long"}]}
    >>> new = {"type": "record", "name": "T", "fields": [{"name": "a", "type": "long"},
    ...                                                  {"name": "b", "type": "int", "default": 0}]}
    >>> decoding_problems(old, new)
    []
    >>> decoding_problems(new, {"type": "record", "name": "T", "fields": [{"name": "a", "type": "int"}]})[0][:44]
    'a record written with writer does not decode'
    """
    try:
        parsed_writer = fastavro.parse_schema(without_logical_types(writer), _write_hint=False)
        parsed_reader = fastavro.parse_schema(without_logical_types(reader), _write_hint=False)
    except Exception as exc:  # fastavro's parse errors have no common base
        return [f"a schema does not parse: {type(exc).__name__}: {exc}"]
    for record in sample_records(writer):
        body = io.BytesIO()
        fastavro.schemaless_writer(body, parsed_writer, record)
        body.seek(0)
        try:
            fastavro.schemaless_reader(body, parsed_writer, parsed_reader)
        except Exception as exc:
            return [
                f"a record written with {writer_label} does not decode with {reader_label}: "
                f"{type(exc).__name__}: {str(exc)[:300]}"
            ]
    return []


def breaches(new: Any, old: Any, mode: Mode, new_label: str = "new", old_label: str = "old") -> list[Breach]:
    """Every reason why ``new`` may not follow ``old`` under ``mode``; empty when it may.

    >>> old = {"type": "record", "name": "T", "fields": [{"name": "a", "type": "long"}]}
    >>> new = {"type": "record", "name": "T", "fields": []}
    >>> breaches(new, old, Mode.BACKWARD)
    []
    >>> [b.judge for b in breaches(new, old, Mode.FORWARD)]
    ['rules', 'codec']
    """
    found: list[Breach] = []
    for direction in mode.directions:
        writer, reader, w_label, r_label = (
            (old, new, old_label, new_label) if direction == "backward" else (new, old, new_label, old_label)
        )
        by_rules = resolution_problems(writer, reader, w_label, r_label, direction)
        by_codec = decoding_problems(writer, reader, w_label, r_label)
        known_false = not by_rules and (refers_by_name(writer) or refers_by_name(reader))
        found += [Breach(direction, "rules", r) for r in by_rules]
        found += [Breach(direction, "codec", r, blocking=not known_false) for r in by_codec]
    return found
