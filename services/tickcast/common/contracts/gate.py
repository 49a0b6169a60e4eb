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
    named = {entry.file for entry in catalogue.entries}
    for path in sorted(directory.glob("*.avsc")):
        if path.name not in named:
            findings.append(Finding("-", f"{path.name} is in {directory} but no catalogue id names it"))
    return findings
