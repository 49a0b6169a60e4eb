"""Named Avro types written out in full wherever they are used, so two schemas compare by structure.

Avro defines a named type (record, enum, fixed) at its first textual occurrence and refers to it by name
afterwards. Two versions of a contract can describe identical types yet place the definition in different
fields (a field added before the old one moves it). fastavro's resolver compares a name reference in one
schema with an inline definition in the other and reports a false "incompatible" (fastavro issues #780 and
#896), and a rule checker that walks the schema needs the definition at every use anyway.
"""

from __future__ import annotations

from typing import Any

NAMED = ("record", "enum", "fixed", "error")
PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")


def fullname(name: str, namespace: str | None) -> str:
    """A name qualified by its namespace, unless it already has one.

    >>> fullname("Tick", "tickcast.v1"), fullname("a.B", "x"), fullname("C", None)
    ('tickcast.v1.Tick', 'a.B', 'C')
    """
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def expand(schema: Any) -> Any:
    """``schema`` with every reference to a named type replaced by a copy of its definition.

    A recursive type keeps its inner reference (it cannot be written out), as the qualified name.

    >>> inner = {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}
    >>> schema = {"type": "record", "name": "T", "namespace": "n", "fields": [
    ...     {"name": "a", "type": inner}, {"name": "b", "type": "Side"}]}
    >>> expand(schema)["fields"][1]["type"]["symbols"]
    ['BUY', 'SELL']
    """
    return _expand(schema, None, {}, ())


def _expand(schema: Any, namespace: str | None, defined: dict[str, Any], open_names: tuple[str, ...]) -> Any:
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return schema
        name = fullname(schema, namespace)
        if name in open_names or name not in defined:
            return name  # recursive (or unknown: the codec will say so)
        return defined[name]
    if isinstance(schema, list):
        return [_expand(branch, namespace, defined, open_names) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind in NAMED:
        name = fullname(str(schema["name"]), schema.get("namespace", namespace))
        inner_namespace = name.rpartition(".")[0] or None
        copy = {k: v for k, v in schema.items() if k not in ("name", "namespace")}
        copy["name"] = name
        if kind in ("record", "error"):
            # Registered before its fields so that a field referring back to it (recursion) finds it open.
            copy["fields"] = []
            defined[name] = copy
            copy["fields"] = [
                {**f, "type": _expand(f["type"], inner_namespace, defined, (*open_names, name))}
                for f in schema.get("fields", [])
            ]
        else:
            defined[name] = copy
        return copy
    if kind == "array":
        return {**schema, "items": _expand(schema["items"], namespace, defined, open_names)}
    if kind == "map":
        return {**schema, "values": _expand(schema["values"], namespace, defined, open_names)}
    if isinstance(kind, dict | list) or (isinstance(kind, str) and kind not in PRIMITIVES):
        return _expand(kind, namespace, defined, open_names)
    return schema


def type_name(schema: Any) -> str:
    """What a schema is, in a word or two, for messages.

    >>> type_name("long"), type_name({"type": "enum", "name": "n.Side", "symbols": []}), type_name(["null", "int"])
    ('long', 'enum n.Side', 'union [null, int]')
    """
    if isinstance(schema, list):
        return "union [" + ", ".join(type_name(b) for b in schema) + "]"
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind in NAMED:
            return f"{kind} {schema.get('name')}"
        if kind == "array":
            return f"array<{type_name(schema['items'])}>"
        if kind == "map":
            return f"map<{type_name(schema['values'])}>"
        return type_name(kind)
    return str(schema)


def kind_of(schema: Any) -> str:
    """The Avro type of an expanded schema: a primitive name, a complex kind, 'union' or 'ref' (recursion).

    >>> kind_of({"type": "long", "logicalType": "timestamp-millis"}), kind_of(["null"]), kind_of("n.T")
    ('long', 'union', 'ref')
    """
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return kind_of(schema["type"]) if isinstance(schema["type"], dict | list) else str(schema["type"])
    return schema if schema in PRIMITIVES else "ref"


def refers_by_name(schema: Any) -> bool:
    """Whether ``schema`` uses a named type by name somewhere (a definition elsewhere, or recursion).

    >>> refers_by_name({"type": "record", "name": "T", "fields": [{"name": "a", "type": "long"}]})
    False
    >>> refers_by_name({"type": "record", "name": "T", "fields": [{"name": "a", "type": ["null", "T"]}]})
    True
    """
    if isinstance(schema, str):
        return schema not in PRIMITIVES
    if isinstance(schema, list):
        return any(refers_by_name(branch) for branch in schema)
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error"):
            return any(refers_by_name(f["type"]) for f in schema.get("fields", []))
        if kind == "array":
            return refers_by_name(schema["items"])
        if kind == "map":
            return refers_by_name(schema["values"])
        if isinstance(kind, dict | list | str) and kind not in NAMED:
            return refers_by_name(kind)
    return False
