"""Records that exercise a schema: every union branch, every enum symbol, edge values of every primitive.

The compatibility check writes these with one version of a contract and reads them with another through
the real codec. Records are deterministic (record ``k`` takes choice ``k`` modulo the number of choices at
every union and enum), so a failure reproduces, and enough of them are made that each choice appears.
"""

from __future__ import annotations

from typing import Any

from tickcast.common.contracts.names import expand, kind_of

#: Per primitive: values a record cycles through, the extremes first. Bytes are valid UTF-8 (NUL, DEL and a
#: two-byte character) because Avro lets a string reader read bytes: a sample a string could never hold would
#: make the codec refuse a change the specification (and every schema registry) allows.
EDGE_VALUES: dict[str, list[Any]] = {
    "null": [None],
    "boolean": [False, True],
    "int": [0, -(2**31), 2**31 - 1, 1],
    "long": [0, -(2**63), 2**63 - 1, 1_700_000_000_000],
    "float": [0.0, -1.5, 3.25e38],
    "double": [0.0, -2.5, 1.7e308, 431.25],
    "bytes": [b"", b"\x00\x7f", "\u00e9".encode(), b"payload"],
    "string": ["", "SPY", "\u00e9\u6771"],
}

#: Deeper than this, unions take a null branch if they have one, so recursive types end.
MAX_DEPTH = 6


def sample_records(schema: Any, at_least: int = 4) -> list[Any]:
    """Records (or values) valid for ``schema``, covering each union branch and enum symbol at least once.

    >>> schema = {"type": "record", "name": "T", "fields": [
    ...     {"name": "side", "type": {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL", "HOLD"]}},
    ...     {"name": "venue", "type": ["null", "string"]}]}
    >>> [r["side"] for r in sample_records(schema)]
    ['BUY', 'SELL', 'HOLD', 'BUY']
    >>> sorted({type(r["venue"]).__name__ for r in sample_records(schema)})
    ['NoneType', 'str']
    """
    expanded = expand(schema)
    count = max(at_least, _most_choices(expanded, 0))
    return [_value(expanded, k, 0) for k in range(count)]


def _most_choices(schema: Any, depth: int) -> int:
    if depth > MAX_DEPTH:
        return 1
    kind = kind_of(schema)
    if kind == "union":
        return max(len(schema), *(_most_choices(b, depth + 1) for b in schema))
    if kind == "enum":
        return len(schema["symbols"])
    if kind in ("record", "error"):
        return max([1, *(_most_choices(f["type"], depth + 1) for f in schema["fields"])])
    if kind == "array":
        return _most_choices(schema["items"], depth + 1)
    if kind == "map":
        return _most_choices(schema["values"], depth + 1)
    return len(EDGE_VALUES.get(kind, [None]))


def _value(schema: Any, k: int, depth: int) -> Any:
    kind = kind_of(schema)
    if kind == "union":
        if depth > MAX_DEPTH and "null" in schema:
            return None
        return _value(schema[k % len(schema)], k, depth + 1)
    if kind in ("record", "error"):
        # Each field shifts k so that two fields of one record do not always take the same choice index.
        return {f["name"]: _value(f["type"], k + i, depth + 1) for i, f in enumerate(schema["fields"])}
    if kind == "enum":
        return schema["symbols"][k % len(schema["symbols"])]
    if kind == "fixed":
        return bytes([k % 256]) * int(schema["size"])
    if kind == "array":
        return [_value(schema["items"], k + i, depth + 1) for i in range(k % 3)]
    if kind == "map":
        return {f"key{i}": _value(schema["values"], k + i, depth + 1) for i in range(k % 3)}
    if kind == "ref":
        raise ValueError(f"cannot build a value of recursive type {schema} without a null branch to end it")
    values = EDGE_VALUES[kind]
    return values[k % len(values)]
