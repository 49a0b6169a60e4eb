"""Can a reader schema read what a writer schema wrote? Avro's resolution rules, with a reason per breach.

The rules are the Avro specification's "Schema Resolution" section, which is also what a Confluent
Schema Registry applies: a reader field absent from the writer needs a default; a writer's enum
symbol unknown to the reader needs the reader's enum default; a type may only widen (int to long,
float or double; long to float or double; float to double; string and bytes either way); a writer
union branch must match some reader branch. Reasons name the field path and the rule.
"""

from __future__ import annotations

from typing import Any

from tickcast.common.contracts.names import NAMED, expand, kind_of, type_name

#: Writer type -> reader types that read it (besides itself): Avro's promotions.
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


#: The rule a reader field without a default breaks, as seen from each side of a change.
MISSING_FIELD_RULES = {
    "backward": "field added without a default",
    "forward": "field removed while the older version has no default for it",
    "": "a reader field without a default that the writer does not write",
}


def resolution_problems(
    writer: Any, reader: Any, writer_label: str = "writer", reader_label: str = "reader", direction: str = ""
) -> list[str]:
    """Why ``reader`` cannot read every record ``writer`` can write; empty when it can.

    >>> old = {"type": "record", "name": "T", "fields": [{"name": "price", "type": "double"}]}
    >>> new = {"type": "record", "name": "T", "fields": [{"name": "price", "type": "float"}]}
    >>> resolution_problems(old, new, "v1", "v2")
    ["field 'price': double in v1 is float in v2: a double cannot be read as float (type narrowed)"]
    >>> resolution_problems(new, old)
    []
    """
    problems: list[str] = []
    _check(expand(writer), expand(reader), "", writer_label, reader_label, problems)
    rule = MISSING_FIELD_RULES[direction]
    return [p.replace("{missing_rule}", rule) for p in problems]


def _where(path: str) -> str:
    return f"field '{path}'" if path else "the record"


def _check(writer: Any, reader: Any, path: str, w_label: str, r_label: str, out: list[str]) -> None:
    w_kind, r_kind = kind_of(writer), kind_of(reader)
    if w_kind == "union":
        before = len(out)
        for branch in writer:
            if not _readable(branch, reader):
                out.append(
                    f"{_where(path)}: {w_label} may write {type_name(branch)}, which {r_label}'s "
                    f"{type_name(reader)} cannot read (union branch removed or narrowed)"
                )
        if len(out) > before:
            return
        for branch in writer:
            _check(branch, _pick(branch, reader), path, w_label, r_label, out)
        return
    if r_kind == "union":
        match = _pick(writer, reader)
        if match is None:
            out.append(
                f"{_where(path)}: {type_name(writer)} in {w_label} matches no branch of {type_name(reader)} "
                f"in {r_label} (type changed)"
            )
            return
        _check(writer, match, path, w_label, r_label, out)
        return
    if "ref" in (w_kind, r_kind):
        return  # recursion: the named type was compared where it was defined
    if w_kind != r_kind:
        if r_kind in PROMOTIONS.get(w_kind, ()):
            return
        narrowed = w_kind in PROMOTIONS.get(r_kind, ())
        out.append(
            f"{_where(path)}: {type_name(writer)} in {w_label} is {type_name(reader)} in {r_label}: a {w_kind} "
            f"cannot be read as {r_kind} ({'type narrowed' if narrowed else 'type changed'})"
        )
        return
    if w_kind in NAMED and not _same_name(writer, reader):
        out.append(f"{_where(path)}: {w_kind} {writer['name']} in {w_label} is named {reader['name']} in {r_label} "
                   "(renamed without an alias)")  # fmt: skip
        return
    if w_kind in ("record", "error"):
        _check_record(writer, reader, path, w_label, r_label, out)
    elif w_kind == "enum":
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            out.append(
                f"{_where(path)}: enum {reader['name']} in {r_label} lacks symbol(s) {', '.join(missing)} that "
                f"{w_label} may write, and has no enum default (enum symbol removed)"
            )
    elif w_kind == "fixed" and writer.get("size") != reader.get("size"):
        out.append(f"{_where(path)}: fixed size {writer.get('size')} in {w_label} is {reader.get('size')} in "
                   f"{r_label} (size changed)")  # fmt: skip
    elif w_kind == "array":
        _check(writer["items"], reader["items"], f"{path}[]", w_label, r_label, out)
    elif w_kind == "map":
        _check(writer["values"], reader["values"], f"{path}{{}}", w_label, r_label, out)


def _check_record(writer: Any, reader: Any, path: str, w_label: str, r_label: str, out: list[str]) -> None:
    written = {f["name"]: f for f in writer["fields"]}
    for field in reader["fields"]:
        names = [field["name"], *field.get("aliases", [])]
        found = next((written[n] for n in names if n in written), None)
        inner = f"{path}.{field['name']}" if path else field["name"]
        if found is None:
            if "default" not in field:
                out.append(
                    f"field '{inner}': in {r_label} without a default, absent from {w_label}: records written "
                    f"with {w_label} cannot fill it ({{missing_rule}})"
                )
            continue
        _check(found["type"], field["type"], inner, w_label, r_label, out)


def _same_name(writer: Any, reader: Any) -> bool:
    short = str(writer["name"]).rpartition(".")[2]
    aliases = {str(a).rpartition(".")[2] for a in reader.get("aliases", [])}
    return short == str(reader["name"]).rpartition(".")[2] or short in aliases


def _readable(writer: Any, reader: Any) -> bool:
    probe: list[str] = []
    _check(writer, reader, "", "", "", probe)
    return not probe


def _pick(writer: Any, union: list[Any]) -> Any:
    """The reader branch Avro resolves ``writer`` to: the same type (and name) first, then a promotion."""
    w_kind = kind_of(writer)
    for branch in union:
        if kind_of(branch) == w_kind and (w_kind not in NAMED or _same_name(writer, branch)):
            return branch
    for branch in union:
        if kind_of(branch) in PROMOTIONS.get(w_kind, ()):
            return branch
    return None
