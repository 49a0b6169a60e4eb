"""The compatibility gate over the whole catalogue: what ``tickcast schema check`` runs in ``make test``.

Every version of every subject is checked against the earlier versions its subject's mode names (all
of them when transitive, the previous one otherwise). Besides compatibility, two mistakes that the
codec cannot see are caught: a contract file in ``schemas/`` that no catalogue id names, and an id
whose file was edited in place (its fingerprint changed), which would make records already written
under that id decode with a schema they were not written with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from tickcast.common.contracts.catalogue import Catalogue, CatalogueEntry, read_catalogue
from tickcast.common.contracts.compatibility import Breach, breaches
from tickcast.common.contracts.names import expand, kind_of, type_name


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason the catalogue does not pass the gate, about one subject (and pair of ids, if any)."""

    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


def schema_fingerprint(schema: dict[str, Any]) -> str:
    """SHA-256 of the schema's Parsing Canonical Form: docs, defaults and key order do not change it.

    >>> a = {"type": "record", "name": "T", "doc": "one", "fields": [{"name": "x", "type": "int"}]}
    >>> b = {"fields": [{"type": "int", "name": "x"}], "name": "T", "type": "record"}
    >>> schema_fingerprint(a) == schema_fingerprint(b), len(schema_fingerprint(a))
    (True, 64)
    """
    return str(fingerprint(to_parsing_canonical_form(fastavro.parse_schema(schema, _write_hint=False)), "SHA-256"))


#: Avro's int and long are 32- and 64-bit: Java's parser refuses a default outside the range.
_INTEGER_BITS = {"int": 32, "long": 64}


def default_problems(schema: dict[str, Any]) -> list[str]:
    """Field defaults that other Avro clients refuse or fail on, though fastavro accepts them.

    fastavro checks a default only against primitive types and lets a union's default match any branch.
    Up to Avro 1.11 the spec reads a union's default as its first branch, and Java's ``Schema.Parser`` of
    those releases (Confluent Platform 7 ships 1.11) refuses such a schema, or, where default validation is
    off, fails on the default when it reads a record written without the field. Avro 1.12 (AVRO-3649)
    accepts any branch; consumers outside tickcast upgrade in their own time, so the gate keeps the old rule.

    >>> default_problems({"type": "record", "name": "T", "fields": [
    ...     {"name": "v", "type": ["null", "string"], "default": "X"}, {"name": "w", "type": "long", "default": 1}]})
    ["field 'v': default 'X' is not a valid null (a union's default must fit its first branch)"]
    """
    problems: list[str] = []
    _check_defaults(expand(schema), problems)
    return list(dict.fromkeys(problems))  # a named type used twice is checked twice


def _check_defaults(schema: Any, problems: list[str]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _check_defaults(branch, problems)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "error"):
        for field in schema.get("fields", []):
            if "default" in field and (why := _default_mismatch(field["type"], field["default"])):
                problems.append(f"field {field['name']!r}: {why}")
            _check_defaults(field["type"], problems)
    elif kind == "array":
        _check_defaults(schema["items"], problems)
    elif kind == "map":
        _check_defaults(schema["values"], problems)
    elif isinstance(kind, dict | list):
        _check_defaults(kind, problems)


def _default_mismatch(schema: Any, value: Any) -> str | None:
    """Why ``value`` (JSON) is no default of the expanded ``schema``, or None if it is one."""
    if isinstance(schema, list):
        why = _default_mismatch(schema[0], value) if schema else "an empty union has no default"
        return f"{why} (a union's default must fit its first branch)" if why else None
    while isinstance(schema, dict) and isinstance(schema.get("type"), dict | list):
        schema = schema["type"]
    kind = kind_of(schema)
    if kind == "union":
        return _default_mismatch(schema, value)
    if kind == "record":
        if not isinstance(value, dict):
            return f"default {value!r} is not a valid {type_name(schema)}"
        for field in schema.get("fields", []):
            if field["name"] not in value:
                if "default" not in field:
                    return f"default {value!r} has no value for field {field['name']!r}"
            elif why := _default_mismatch(field["type"], value[field["name"]]):
                return why
        return None
    if kind in ("array", "map"):
        items = value if kind == "array" and isinstance(value, list) else None
        if kind == "map" and isinstance(value, dict):
            items = list(value.values())
        if items is None:
            return f"default {value!r} is not a valid {type_name(schema)}"
        inner = schema["items"] if kind == "array" else schema["values"]
        return next((why for item in items if (why := _default_mismatch(inner, item))), None)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    valid = {
        "ref": True,  # a recursive reference: its definition is checked where it is written out
        "null": value is None,
        "boolean": isinstance(value, bool),
        "float": number,
        "double": number,
        "string": isinstance(value, str),
        "bytes": isinstance(value, str),
        "fixed": isinstance(value, str),
        "enum": isinstance(schema, dict) and value in schema.get("symbols", ()),
    }.get(kind)
    if kind in _INTEGER_BITS:
        bound = 2 ** (_INTEGER_BITS[kind] - 1)
        valid = isinstance(value, int) and not isinstance(value, bool) and -bound <= value < bound
    return None if valid else f"default {value!r} is not a valid {type_name(schema)}"


def label(entry: CatalogueEntry) -> str:
    """How an id is named in reasons.

    >>> label(CatalogueEntry(2, "predictions-value", "prediction-v1.avsc", {}, None))
    'id 2 (prediction-v1.avsc)'
    """
    return f"id {entry.schema_id} ({entry.file})"


def pair_breaches(catalogue: Catalogue) -> list[tuple[str, CatalogueEntry, CatalogueEntry, Breach]]:
    """(subject, new, old, breach) for every pair the subjects' modes ask to check."""
    found = []
    for subject, versions in catalogue.subjects().items():
        mode = catalogue.mode(subject)
        for index in range(1, len(versions)):
            new = versions[index]
            earlier = versions[:index] if mode.transitive else [versions[index - 1]]
            for old in earlier:
                for breach in breaches(new.schema, old.schema, mode, label(new), label(old)):
                    found.append((subject, new, old, breach))
    return found


def check_catalogue(directory: Path) -> list[Finding]:
    """Every reason the contracts in ``directory`` fail the gate; empty when they pass.

    >>> from tickcast.common.contracts.base import schemas_dir
    >>> check_catalogue(schemas_dir())
    []
    """
    catalogue = read_catalogue(directory)
    findings = [
        Finding(subject, f"{label(new)} is not {catalogue.mode(subject).value} compatible with {label(old)}: {b}")
        for subject, new, old, b in pair_breaches(catalogue)
        if b.blocking
    ]
    for entry in catalogue.entries:
        for problem in default_problems(entry.schema):
            findings.append(
                Finding(
                    entry.subject,
                    f"{label(entry)}: {problem}; Avro clients other than fastavro refuse it (Java up to Avro 1.11)",
                )
            )
        actual = schema_fingerprint(entry.schema)
        if entry.fingerprint is None:
            findings.append(Finding(entry.subject, f"{label(entry)} has no fingerprint in catalogue.json; "
                                                   f'add "fingerprint": "{actual}"'))  # fmt: skip
        elif entry.fingerprint != actual:
            findings.append(
                Finding(
                    entry.subject,
                    f"{label(entry)} was edited in place (fingerprint {actual[:12]}..., catalogue says "
                    f"{entry.fingerprint[:12]}...): records already written under id {entry.schema_id} would "
                    "decode with the wrong schema; restore the file, and put the change in a new file with a new id",
                )
            )
    files_of: dict[int, list[str]] = {}
    for entry in catalogue.entries:
        files_of.setdefault(entry.schema_id, []).append(entry.file)
    for schema_id, files in files_of.items():
        if len(files) > 1:
            # The store keeps one schema per id: records written under it would decode with another's.
            findings.append(Finding("-", f"id {schema_id} is given to {', '.join(files)}; ids are never reused, "
                                         "give the new file the next free id"))  # fmt: skip
    named = {entry.file for entry in catalogue.entries}
    for path in sorted(directory.glob("*.avsc")):
        if path.name not in named:
            findings.append(Finding("-", f"{path.name} is in {directory} but no catalogue id names it"))
    return findings
