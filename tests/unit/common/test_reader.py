"""The compiled reader returns fastavro's values for every clean record, and leaves every other one to fastavro.

``AvroCodec.decode_values`` must answer exactly as ``decode`` does: the same values for a valid tick, the same
:class:`Rejected` (reason and message, which a dead letter carries) for a damaged one.
"""

from __future__ import annotations

import struct
from dataclasses import fields
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.common.test_writer import values_of
from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import TICK_SCHEMA_FILE
from tickcast.common.contracts.reader import NotClean, compile_reader, read_varint
from tickcast.common.errors import Rejected
from tickcast.common.records import Tick

TICK_SCHEMA = load_schema(TICK_SCHEMA_FILE)
CODEC = AvroCodec(open_schema_store(None), "ticks-value", TICK_SCHEMA)
TICKS = st.fixed_dictionaries({f["name"]: values_of(f["type"]) for f in TICK_SCHEMA["fields"]})


def same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal values, NaN equal to NaN with the same bits (a float's bits are what a prediction carries on)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, float) and isinstance(y, float):
            if struct.pack("<d", x) != struct.pack("<d", y):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


def answer(call: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "values", call(data)
    except Rejected as rejected:
        return "rejected", (rejected.reason, rejected.message)


def by_decode(data: bytes) -> tuple[Any, ...]:
    record = CODEC.decode(data)
    return tuple(record[name] for name in CODEC.field_names)


@settings(max_examples=400, deadline=None)
@given(TICKS)
def test_a_valid_tick_reads_as_fastavro_reads_it(record: dict[str, Any]) -> None:
    data = CODEC.encode(record)
    assert same(CODEC.decode_values(data), by_decode(data))


@settings(max_examples=600, deadline=None)
@given(TICKS, st.data())
def test_a_damaged_tick_gets_fastavros_answer(record: dict[str, Any], data: st.DataObject) -> None:
    encoded = bytearray(CODEC.encode(record))
    damage = data.draw(st.sampled_from(["cut", "flip", "append"]))
    if damage == "cut":
        del encoded[data.draw(st.integers(0, len(encoded) - 1)) :]
    elif damage == "flip":
        at = data.draw(st.integers(5, len(encoded) - 1))
        encoded[at] = data.draw(st.integers(0, 255))
    else:
        encoded += data.draw(st.binary(min_size=1, max_size=12))
    damaged = bytes(encoded)
    fast, slow = answer(CODEC.decode_values, damaged), answer(by_decode, damaged)
    assert fast[0] == slow[0]
    if fast[0] == "values":
        assert same(fast[1], slow[1])
    else:
        assert fast[1] == slow[1]


def test_tick_takes_the_contracts_fields_in_order() -> None:
    # intake builds Tick(*decode_values(...)): positional, so the two orders must stay one.
    assert CODEC.field_names == tuple(f.name for f in fields(Tick))


def test_a_long_varint_is_left_to_fastavro() -> None:
    with pytest.raises(NotClean):
        read_varint(b"\x80" * 9 + b"\x01", 0)
    assert read_varint(b"\xfe" + b"\xff" * 7 + b"\x7f", 0)[0] == 2**62 - 1


def looped_varint(data: bytes, pos: int) -> tuple[int, int]:
    """read_varint as a loop, as it was before its steps were unrolled: the reference for the unrolled one."""
    shift = n = 0
    start = pos
    while True:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (n >> 1) ^ -(n & 1), pos
        shift += 7
        if pos - start >= 9:
            raise NotClean("varint longer than nine bytes")


def outcome(data: bytes, pos: int, read: Any) -> tuple[str, Any]:
    try:
        return "value", read(data, pos)
    except (IndexError, NotClean) as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=14), st.integers(0, 4))
def test_the_unrolled_varint_reads_any_bytes_as_the_loop_did(data: bytes, pos: int) -> None:
    # Truncated input (IndexError), ten bytes or more (NotClean), any start: the same answer, error message included.
    assert outcome(data, pos, read_varint) == outcome(data, pos, looped_varint)


@given(st.integers(-(2**62), 2**62 - 1), st.binary(max_size=3))
def test_every_long_of_nine_bytes_or_fewer_reads_back_from_any_position(value: int, before: bytes) -> None:
    zigzag = (value << 1) ^ (value >> 63)
    encoded = bytearray()
    while zigzag >= 0x80:
        encoded.append(zigzag & 0x7F | 0x80)
        zigzag >>= 7
    encoded.append(zigzag)
    data = before + bytes(encoded)
    assert read_varint(data, len(before)) == (value, len(data))
    for cut in range(len(before), len(data)):
        assert outcome(data[:cut], len(before), read_varint)[0] == "IndexError"


def test_unsupported_field_types_compile_to_nothing() -> None:
    assert compile_reader([{"name": "b", "type": "boolean"}], 0) is None
    assert compile_reader([{"name": "x", "type": ["string", "null"]}], 0) is None
    assert compile_reader([{"name": "f", "type": "float"}], 0) is None


def test_every_one_byte_change_gets_fastavros_answer() -> None:
    # Exhaustive where sampling is thin: a union tag or a length byte set to each of its 256 values.
    record = {"symbol": "BRK.B", "price": 431.25, "size": 100.0, "event_time": 1_381_152_600_000}
    encoded = CODEC.encode({**record, "venue": "XNYS", "condition": None})
    for at in range(5, len(encoded)):
        for byte in range(256):
            damaged = encoded[:at] + bytes([byte]) + encoded[at + 1 :]
            fast, slow = answer(CODEC.decode_values, damaged), answer(by_decode, damaged)
            assert fast[0] == slow[0], (at, byte)
            assert same(fast[1], slow[1]) if fast[0] == "values" else fast[1] == slow[1], (at, byte)
