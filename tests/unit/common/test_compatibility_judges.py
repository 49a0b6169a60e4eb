"""Property: Avro's rules (as written in resolution.py) and fastavro's decoding agree on random schema changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickcast.common.contracts.compatibility import decoding_problems
from tickcast.common.contracts.resolution import resolution_problems

PRIMITIVES = ["boolean", "int", "long", "float", "double", "string", "bytes"]
DEFAULTS: dict[str, Any] = {
    "boolean": False,
    "int": 0,
    "long": 0,
    "float": 0.0,
    "double": 0.0,
    "string": "",
    "bytes": "",
}


@st.composite
def field_types(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["primitive", "nullable", "enum", "array"]))
    if kind == "primitive":
        return draw(st.sampled_from(PRIMITIVES))
    if kind == "nullable":
        return ["null", draw(st.sampled_from(PRIMITIVES))]
    if kind == "enum":
        symbols = draw(st.lists(st.sampled_from(["A", "B", "C", "D"]), min_size=1, max_size=4, unique=True))
        return {"type": "enum", "name": "E", "symbols": symbols}
    return {"type": "array", "items": draw(st.sampled_from(PRIMITIVES))}


def default_of(kind: Any) -> Any:
    if isinstance(kind, list):
        return None
    if isinstance(kind, dict):
        return kind["symbols"][0] if kind["type"] == "enum" else []
    return DEFAULTS[kind]


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4, unique=True))
    fields = []
    for name in names:
        kind = draw(field_types())
        field: dict[str, Any] = {"name": name, "type": kind}
        if draw(st.booleans()):
            field["default"] = default_of(kind)
        fields.append(field)
    # One enum per record: a second definition of the same name would not parse.
    enums = [f for f in fields if isinstance(f["type"], dict) and f["type"]["type"] == "enum"]
    for extra in enums[1:]:
        extra["type"] = "string"
        extra.pop("default", None)
    return {"type": "record", "name": "R", "fields": fields}


@pytest.mark.long
@settings(max_examples=300, deadline=None)
@given(records(), records())
def test_rules_and_codec_agree(old: dict[str, Any], new: dict[str, Any]) -> None:
    by_rules = resolution_problems(copy.deepcopy(old), copy.deepcopy(new))
    by_codec = decoding_problems(old, new)
    assert bool(by_rules) == bool(by_codec), f"rules: {by_rules}\ncodec: {by_codec}"
