"""The compiled record writer writes exactly fastavro's bytes, for any valid record of the contracts.

Strategies are derived from the schema files, so a field added to a contract is covered without
touching this test.
"""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickcast.common.contracts import load_schema
from tickcast.common.contracts import writer as writer_module
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE, TICK_SCHEMA_FILE
from tickcast.common.contracts.codec import without_logical_types
from tickcast.common.contracts.writer import RecordWriter, UnsupportedSchema, varint
from tickcast.common.records import Prediction, Tick

INT32, INT64 = 2**31, 2**63


def values_of(schema: Any) -> st.SearchStrategy[Any]:
    """Every value Avro accepts for ``schema`` (NaN and infinities included)."""
    if isinstance(schema, list):
        return st.one_of(*(values_of(branch) for branch in schema))
    if isinstance(schema, dict) and schema["type"] not in ("enum", "array", "map", "record"):
        return values_of(schema["type"])
    primitives: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-INT32, INT32 - 1),
        "long": st.integers(-INT64, INT64 - 1),
        "float": st.floats(width=32),
        "double": st.floats(),
        "string": st.text(),
        "bytes": st.binary(),
    }
    if isinstance(schema, str):
        return primitives[schema]
    kind = schema["type"]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(values_of(schema["items"]), max_size=5)
    if kind == "map":
        return st.dictionaries(st.text(), values_of(schema["values"]), max_size=5)
    return st.fixed_dictionaries({field["name"]: values_of(field["type"]) for field in schema["fields"]})


def fastavro_bytes(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(without_logical_types(schema)), record)
    return out.getvalue()


PREDICTION_SCHEMA = load_schema(PREDICTION_SCHEMA_FILE)
TICK_SCHEMA = load_schema(TICK_SCHEMA_FILE)


@settings(max_examples=300)
@given(values_of(PREDICTION_SCHEMA))
def test_prediction_objects_encode_as_fastavro_does(record: dict[str, Any]) -> None:
    assert RecordWriter(PREDICTION_SCHEMA).encode(Prediction(**record)) == fastavro_bytes(PREDICTION_SCHEMA, record)


@settings(max_examples=300)
@given(values_of(PREDICTION_SCHEMA))
def test_predictions_with_forecast_objects_encode_as_fastavro_does(record: dict[str, Any]) -> None:
    """A worker's predictions carry HorizonForecast objects, not dicts: that path writes the same bytes."""
    assert RecordWriter(PREDICTION_SCHEMA).encode(Prediction.from_avro(record)) == fastavro_bytes(
        PREDICTION_SCHEMA, record
    )


@settings(max_examples=200)
@given(values_of(TICK_SCHEMA))
def test_tick_objects_and_dicts_encode_as_fastavro_does(record: dict[str, Any]) -> None:
    expected = fastavro_bytes(TICK_SCHEMA, record)
    assert RecordWriter(TICK_SCHEMA).encode(Tick.from_avro(record)) == expected
    assert RecordWriter(TICK_SCHEMA, by_key=True).encode(record, b"\x00") == b"\x00" + expected


#: One writer for all examples: its string memory fills, hits and (bounded at 3 here) clears across them.
SHARED_PREDICTION_WRITER: list[RecordWriter] = []


@settings(max_examples=300)
@given(values_of(PREDICTION_SCHEMA), st.sampled_from(["", "SPY", "ä€😀", "worker-1", "a" * 200]))
def test_one_writer_encodes_repeated_strings_as_fastavro_does(record: dict[str, Any], repeated: str) -> None:
    """Strings repeat in a worker's predictions (symbol, worker, model): remembered encodings must stay exact."""
    if not SHARED_PREDICTION_WRITER:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(writer_module, "STRING_CACHE_SIZE", 3)
            SHARED_PREDICTION_WRITER.append(RecordWriter(PREDICTION_SCHEMA))
    record = {**record, "symbol": repeated, "worker": repeated, "flags": [repeated, *record["flags"]]}
    assert SHARED_PREDICTION_WRITER[0].encode(Prediction(**record)) == fastavro_bytes(PREDICTION_SCHEMA, record)


NESTED = {
    "type": "record",
    "name": "Outer",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "ratio", "type": "float"},
        {"name": "blob", "type": ["bytes", "null"]},
        {"name": "counts", "type": {"type": "map", "values": "int"}},
        {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [{"name": "n", "type": "long"}]}},
        {"name": "rows", "type": {"type": "array", "items": {"type": "array", "items": "double"}}},
        {"name": "nothing", "type": "null"},
    ],
}


@settings(max_examples=200)
@given(values_of(NESTED))
def test_every_compiled_type_encodes_as_fastavro_does(record: dict[str, Any]) -> None:
    assert RecordWriter(NESTED, by_key=True).encode(record) == fastavro_bytes(NESTED, record)


@given(st.integers(-INT64, INT64 - 1))
def test_varint_is_avros_long(n: int) -> None:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, "long", n)
    assert varint(n) == out.getvalue()


@pytest.mark.parametrize(
    "field_type",
    [{"type": "fixed", "name": "F", "size": 4}, ["int", "string"], "SomeNamedType"],
)
def test_types_it_does_not_compile_are_refused_when_built(field_type: Any) -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "x", "type": field_type}]}
    with pytest.raises(UnsupportedSchema):
        RecordWriter(schema)
