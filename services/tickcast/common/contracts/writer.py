"""Avro binary encoding of one record schema, compiled once into a list of per-field writers.

fastavro's ``schemaless_writer`` re-parses its (already parsed) schema on every call and walks a dict
per record: about 10 µs for a prediction, the largest single cost of a tick in a worker's profile.
:class:`RecordWriter` does the schema work once, when it is built, and then reads the values straight
off an object's attributes (a :class:`~tickcast.common.records.Prediction`, no intermediate dict).
It covers the types the contracts use (null, boolean, int, long, float, double, string, bytes, enum,
array, map, union, nested record) and refuses any other at build time, so a contract that outgrows it
fails loudly instead of being written wrong. The bytes equal fastavro's: see the property tests.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from keyword import iskeyword
from operator import attrgetter
from typing import Any

#: Appends one value's encoding to the buffer.
FieldWriter = Callable[[bytearray, Any], None]

_DOUBLE = struct.Struct("<d").pack
_FLOAT = struct.Struct("<f").pack
#: Zig-zag varints of small values are looked up, not computed: lengths, enum indexes, counts.
_SMALL = tuple(
    bytes([(n << 1) & 0x7F | 0x80, (n << 1) >> 7]) if (n << 1) > 0x7F else bytes([n << 1]) for n in range(64)
)


#: Every 14-bit group as the two varint bytes it becomes when more groups follow (continuation bits set):
#: a 41-bit timestamp takes three lookups instead of six rounds of shifting and masking (~2 µs -> ~0.6 µs).
_PAIRS = tuple(bytes([group & 0x7F | 0x80, group >> 7 | 0x80]) for group in range(1 << 14))


def varint(n: int) -> bytes:
    """Avro's zig-zag variable-length encoding of an int or long.

    >>> varint(0), varint(-1), varint(1), varint(64), varint(-65)
    (b'\\x00', b'\\x01', b'\\x02', b'\\x80\\x01', b'\\x81\\x01')
    >>> varint(2**63 - 1) == b"\\xfe" + b"\\xff" * 8 + b"\\x01"
    True
    """
    if 0 <= n < 64:
        return _SMALL[n]
    zigzag = (n << 1) ^ (n >> 63)
    if zigzag < 0x80:
        return bytes((zigzag,))
    groups = []
    while zigzag >= 1 << 14:
        groups.append(_PAIRS[zigzag & 0x3FFF])
        zigzag >>= 14
    if zigzag < 0x80:
        groups.append(bytes((zigzag,)))
    else:
        groups.append(bytes((zigzag & 0x7F | 0x80, zigzag >> 7)))
    return b"".join(groups)


class UnsupportedSchema(ValueError):
    """The schema uses an Avro feature :class:`RecordWriter` does not compile (fixed, a named reference, ...)."""


def _write_null(out: bytearray, value: Any) -> None:
    if value is not None:
        raise ValueError(f"null field holds {value!r}")


def _write_boolean(out: bytearray, value: Any) -> None:
    out.append(1 if value else 0)


def _write_long(out: bytearray, value: Any) -> None:
    # varint's groups appended straight to the record, without building and joining them first: a prediction
    # carries three timestamps of six or seven varint bytes each.
    if 0 <= value < 64:
        out += _SMALL[value]
        return
    zigzag = (value << 1) ^ (value >> 63)
    while zigzag >= 1 << 14:
        out += _PAIRS[zigzag & 0x3FFF]
        zigzag >>= 14
    if zigzag < 0x80:
        out.append(zigzag)
    else:
        out.append(zigzag & 0x7F | 0x80)
        out.append(zigzag >> 7)


def _write_double(out: bytearray, value: Any) -> None:
    out += _DOUBLE(value)


def _write_float(out: bytearray, value: Any) -> None:
    out += _FLOAT(value)


def _write_string(out: bytearray, value: Any) -> None:
    data = value.encode("utf-8")
    out += varint(len(data))
    out += data


#: Distinct values one string field remembers the encoding of before it starts over.
STRING_CACHE_SIZE = 4096


def _cached_string() -> FieldWriter:
    """A string writer that remembers encodings: a prediction's strings repeat (worker, model, topic, symbol).

    A lookup is ~0.1 µs against ~0.5 µs to encode and prefix the length. Bounded: a field of ever-new values
    (unbounded symbols) clears its memory when full rather than growing.
    """
    remembered, encode = _string_memory()

    def write(out: bytearray, value: Any) -> None:
        found = remembered(value)
        out += encode(value) if found is None else found

    return write


def _string_memory() -> tuple[Callable[[str], bytes | None], Callable[[str], bytes]]:
    """(look up, encode and remember) for one string field: its memory, bounded by STRING_CACHE_SIZE."""
    encoded: dict[str, bytes] = {}
    limit = STRING_CACHE_SIZE

    def encode(value: str) -> bytes:
        data = value.encode("utf-8")
        found = varint(len(data)) + data
        if len(encoded) >= limit:
            encoded.clear()
        encoded[value] = found
        return found

    return encoded.get, encode


def _write_bytes(out: bytearray, value: Any) -> None:
    out += varint(len(value))
    out += value


_PRIMITIVES: dict[str, FieldWriter] = {
    "null": _write_null,
    "boolean": _write_boolean,
    "int": _write_long,
    "long": _write_long,
    "float": _write_float,
    "double": _write_double,
    "string": _write_string,
    "bytes": _write_bytes,
}


def _enum(symbols: Sequence[str]) -> FieldWriter:
    index = {symbol: varint(i) for i, symbol in enumerate(symbols)}

    def write(out: bytearray, value: Any) -> None:
        out += index[value]

    return write


def _array(items: FieldWriter) -> FieldWriter:
    def write(out: bytearray, value: Any) -> None:
        if value:
            out += varint(len(value))
            for item in value:
                items(out, item)
        out.append(0)

    return write


def _map(values: FieldWriter) -> FieldWriter:
    def write(out: bytearray, value: Any) -> None:
        if value:
            out += varint(len(value))
            for key, item in value.items():
                _write_string(out, key)
                values(out, item)
        out.append(0)

    return write


def _optional(null_index: int, other: FieldWriter) -> FieldWriter:
    """``["null", T]`` (either order), the only union shape the contracts use."""
    null_tag, other_tag = varint(null_index), varint(1 - null_index)

    def write(out: bytearray, value: Any) -> None:
        if value is None:
            out += null_tag
        else:
            out += other_tag
            other(out, value)

    return write


def compile_type(schema: Any) -> FieldWriter:
    """The writer of one Avro type (``logicalType`` annotations change nothing on the wire)."""
    if isinstance(schema, str):
        if schema == "string":
            return _cached_string()
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        raise UnsupportedSchema(f"named type reference {schema!r}")
    if isinstance(schema, list):
        names = [branch if isinstance(branch, str) else branch.get("type") for branch in schema]
        if len(schema) == 2 and "null" in names:
            null_index = names.index("null")
            return _optional(null_index, compile_type(schema[1 - null_index]))
        raise UnsupportedSchema(f"union {names!r} (only [null, T] is compiled)")
    kind = schema["type"]
    if kind == "enum":
        return _enum(schema["symbols"])
    if kind == "array":
        return _array(compile_type(schema["items"]))
    if kind == "map":
        return _map(compile_type(schema["values"]))
    if kind == "record":
        return _nested(RecordWriter(schema, by_key=True), RecordWriter(schema))
    return compile_type(kind)


def _nested(by_key: RecordWriter, by_attribute: RecordWriter) -> FieldWriter:
    """A nested record given as a dict (decoded records, tests) or as an object (a prediction's forecasts)."""

    def write(out: bytearray, value: Any) -> None:
        (by_key if isinstance(value, dict) else by_attribute).write(out, value)

    return write


class RecordWriter:
    """Writes records of one Avro record schema, taking field values by attribute or by key.

    >>> schema = {"type": "record", "name": "P", "fields": [{"name": "s", "type": "string"},
    ...           {"name": "n", "type": ["null", "long"]}]}
    >>> RecordWriter(schema, by_key=True).encode({"s": "SPY", "n": 1})
    b'\\x06SPY\\x02\\x02'
    """

    def __init__(self, schema: dict[str, Any], by_key: bool = False) -> None:
        if schema.get("type") != "record":
            raise UnsupportedSchema(f"{schema.get('type')!r} is not a record")
        names = [field["name"] for field in schema["fields"]]
        self.field_names = tuple(names)
        self._writers = tuple(compile_type(field["type"]) for field in schema["fields"])
        if by_key:
            self._values: Callable[[Any], tuple[Any, ...]] = lambda record: tuple(record[name] for name in names)
        else:
            getter = attrgetter(*names)
            self._values = (lambda obj: (getter(obj),)) if len(names) == 1 else getter
        if not by_key and all(name.isidentifier() and not iskeyword(name) for name in names):
            self.write = _inline_record(schema["fields"], self._writers)  # type: ignore[method-assign,assignment]

    def write(self, out: bytearray, record: Any) -> None:
        """Append ``record``'s encoding to ``out``."""
        for write, value in zip(self._writers, self._values(record), strict=True):
            write(out, value)

    def encode(self, record: Any, prefix: bytes = b"") -> bytes:
        """``prefix`` (e.g. the Confluent header) followed by ``record``'s encoding."""
        out = bytearray(prefix)
        self.write(out, record)
        return bytes(out)


def _inline_record(fields: Sequence[dict[str, Any]], writers: Sequence[FieldWriter]) -> FieldWriter:
    """One function writing a record from an object's attributes, each primitive field's encoding inline.

    The generic :meth:`RecordWriter.write` makes a Python call per field (43 for a prediction with one horizon);
    here the common types (long, int, double, string, enum, boolean and ``[null, T]`` of those) are written by
    straight-line code, as dataclasses builds ``__init__``, and only the others (arrays, maps, records, bytes)
    call their compiled writer. Consecutive doubles are packed by one ``struct`` call. The bytes are the
    generic writer's: the same tables, the same string memory (see the property tests).
    """
    namespace: dict[str, Any] = {"SMALL": _SMALL, "PAIRS": _PAIRS, "varint": varint}
    body: list[str] = []
    doubles: list[str] = []

    def flush_doubles() -> None:
        if doubles:
            namespace[f"pack_{len(body)}"] = struct.Struct("<" + "d" * len(doubles)).pack
            body.append(f"    out += pack_{len(body)}({', '.join(doubles)})")
            doubles.clear()

    for index, (field, writer) in enumerate(zip(fields, writers, strict=True)):
        kind, value = _primitive(field["type"]), f"obj.{field['name']}"
        if kind == "double":
            doubles.append(value)
            continue
        flush_doubles()
        body.append(f"    v = {value}")
        optional = _optional_branch(field["type"])
        if optional is not None:
            null_index, branch = optional
            inner = _inline_value(_primitive(branch), branch, index, namespace, indent="        ")
            if inner is not None:
                null_tag, other_tag = varint(null_index), varint(1 - null_index)
                body += [
                    "    if v is None:",
                    f"        out += {null_tag!r}",
                    "    else:",
                    f"        out += {other_tag!r}",
                ]
                body += inner
                continue
        inner = _inline_value(kind, field["type"], index, namespace, indent="    ")
        if inner is None:
            namespace[f"w{index}"] = writer
            inner = [f"    w{index}(out, v)"]
        body += inner
    flush_doubles()
    source = "def write(out, obj):\n" + ("\n".join(body) or "    pass") + "\n"
    # Source built above from the schema's field names (checked to be identifiers) and this module's tables only.
    exec(compile(source, "<tickcast.common.contracts.writer>", "exec"), namespace)  # nosec B102
    write: FieldWriter = namespace["write"]
    return write


def _primitive(schema: Any) -> str | None:
    """The primitive type name of ``schema`` (logical types included), None for anything else."""
    if isinstance(schema, dict) and schema.get("type") in _PRIMITIVES:
        schema = schema["type"]
    return schema if isinstance(schema, str) and schema in _PRIMITIVES else None


def _optional_branch(schema: Any) -> tuple[int, Any] | None:
    if isinstance(schema, list) and len(schema) == 2 and "null" in schema:
        null_index = schema.index("null")
        return null_index, schema[1 - null_index]
    return None


def _inline_value(
    kind: str | None, schema: Any, index: int, namespace: dict[str, Any], indent: str
) -> list[str] | None:
    """Lines appending the encoding of ``v`` (a value of ``schema``), or None if it is written by a call."""
    if kind in ("long", "int"):
        # _write_long's body, inline: a prediction carries seven longs past 63 (times, offsets, counts).
        return [
            f"{indent}if 0 <= v < 64:",
            f"{indent}    out += SMALL[v]",
            f"{indent}else:",
            f"{indent}    z = (v << 1) ^ (v >> 63)",
            f"{indent}    while z >= 16384:",
            f"{indent}        out += PAIRS[z & 16383]",
            f"{indent}        z >>= 14",
            f"{indent}    if z < 128:",
            f"{indent}        out.append(z)",
            f"{indent}    else:",
            f"{indent}        out.append(z & 127 | 128)",
            f"{indent}        out.append(z >> 7)",
        ]
    if kind == "double":
        namespace["pack_d"] = _DOUBLE
        return [f"{indent}out += pack_d(v)"]
    if kind == "boolean":
        return [f"{indent}out.append(1 if v else 0)"]
    if kind == "string":
        namespace[f"remembered{index}"], namespace[f"encode{index}"] = _string_memory()
        return [
            f"{indent}found = remembered{index}(v)",
            f"{indent}out += encode{index}(v) if found is None else found",
        ]
    if isinstance(schema, dict) and schema.get("type") == "enum":
        namespace[f"e{index}"] = {symbol: varint(i) for i, symbol in enumerate(schema["symbols"])}
        return [f"{indent}out += e{index}[v]"]
    items = schema.get("items") if isinstance(schema, dict) and schema.get("type") == "array" else None
    if isinstance(items, dict) and items.get("type") == "record":
        # An array of records (a prediction's forecasts): the loop here, each item by its own inline writer.
        by_attribute, by_key = RecordWriter(items), RecordWriter(items, by_key=True)
        namespace[f"ra{index}"], namespace[f"rk{index}"] = by_attribute.write, by_key.write
        return [
            f"{indent}if v:",
            f"{indent}    n = len(v)",
            f"{indent}    out += SMALL[n] if n < 64 else varint(n)",
            f"{indent}    for item in v:",
            f"{indent}        if isinstance(item, dict):",
            f"{indent}            rk{index}(out, item)",
            f"{indent}        else:",
            f"{indent}            ra{index}(out, item)",
            f"{indent}out.append(0)",
        ]
    return None
