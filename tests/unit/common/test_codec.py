"""Confluent wire format and Avro codec: round trips, framing a Java client reads, typed rejections."""

from __future__ import annotations

import contextlib
import struct

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickcast.common.contracts import AvroCodec, frame, load_schema, open_schema_store, unframe
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE, TICK_SCHEMA_FILE
from tickcast.common.contracts.catalogue import CatalogueSchemaStore
from tickcast.common.errors import Reason, Rejected
from tickcast.common.records import Prediction, Tick

STORE = open_schema_store(None)
TICKS = AvroCodec(STORE, "ticks-value", load_schema(TICK_SCHEMA_FILE))
PREDICTIONS = AvroCodec(STORE, "predictions-value", load_schema(PREDICTION_SCHEMA_FILE))

finite = st.floats(allow_nan=False, allow_infinity=False)
ticks = st.builds(
    Tick,
    symbol=st.text(min_size=1, max_size=40),
    price=finite,
    size=finite,
    event_time=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    venue=st.none() | st.text(max_size=5),
    condition=st.none() | st.text(max_size=5),
)


@given(ticks)
def test_tick_round_trip(tick: Tick) -> None:
    assert Tick.from_avro(TICKS.decode(TICKS.encode(tick.to_avro()))) == tick


def test_prediction_round_trip() -> None:
    prediction = Prediction(
        symbol="SPY", event_time=1, last_price=2.0, predicted_return_bps=-0.5, predicted_price=1.9999,
        horizon_ticks=1, status="READY", model_name="linear", model_version="1+river0.26.1", ticks_learned=7,
        source_topic="ticks", source_partition=3, source_offset=99, tick_produced_at=5, predicted_at=6_000,
        worker="w-1", abs_error_ewm_bps=None, flags=["outlier"],
    )  # fmt: skip
    assert Prediction.from_avro(PREDICTIONS.decode(PREDICTIONS.encode(prediction.to_avro()))) == prediction


def test_framing_is_what_a_java_or_go_client_expects() -> None:
    data = TICKS.encode({"symbol": "IBM", "price": 1.0, "size": 0.0, "event_time": 0})
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0 and schema_id == TICKS.schema_id == 1
    # The body is plain Avro binary: a generic reader with the contract (logical types and all) decodes it.
    from io import BytesIO

    record = fastavro.schemaless_reader(BytesIO(data[5:]), fastavro.parse_schema(load_schema(TICK_SCHEMA_FILE)), None)
    assert record["symbol"] == "IBM"


def test_ids_are_big_endian() -> None:
    assert frame(258, b"")[1:5] == b"\x00\x00\x01\x02"
    assert unframe(b"\x00\x00\x00\x01\x02body")[0] == 258


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Reason.EMPTY_VALUE),
        (b"\x01\x00\x00\x00\x01abc", Reason.BAD_MAGIC),
        (b"\x00\x00\x00", Reason.TRUNCATED),
        (b"\x00\x00\x00\x03\xe7abc", Reason.UNKNOWN_SCHEMA),
        (b"\x00\x00\x00\x00\x01", Reason.TRUNCATED),
        (b'{"symbol": "SPY"}', Reason.BAD_MAGIC),
    ],
)
def test_bad_bytes_are_rejected_with_a_reason(data: bytes, reason: Reason) -> None:
    with pytest.raises(Rejected) as caught:
        TICKS.decode(data)
    assert caught.value.reason == reason


def test_a_prediction_is_not_a_tick() -> None:
    data = PREDICTIONS.encode(
        Prediction("S", 1, 1.0, 0.0, 1.0, 1, "READY", "m", "v", 0, "t", 0, 0, 0, 0, "w").to_avro()
    )
    with pytest.raises(Rejected) as caught:
        TICKS.decode(data)
    assert caught.value.reason in (Reason.BAD_AVRO, Reason.TRUNCATED)


def test_trailing_bytes_are_rejected() -> None:
    data = TICKS.encode({"symbol": "IBM", "price": 1.0, "size": 0.0, "event_time": 0}) + b"\x00"
    with pytest.raises(Rejected, match="trailing"):
        TICKS.decode(data)


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_ever_raise_rejected(data: bytes) -> None:
    with contextlib.suppress(Rejected):
        TICKS.decode(data)


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_arbitrary_bodies_behind_a_valid_header_only_raise_rejected(body: bytes) -> None:
    with contextlib.suppress(Rejected):
        TICKS.decode(frame(1, body))


def test_catalogue_refuses_an_unregistered_schema() -> None:
    from tickcast.common.contracts import SchemaError

    store = STORE
    assert isinstance(store, CatalogueSchemaStore)
    with pytest.raises(SchemaError, match="not in the catalogue"):
        store.register("ticks-value", {"type": "record", "name": "Other", "fields": []})


def test_a_body_cut_inside_a_number_says_so_not_a_python_index_error() -> None:
    # Cut inside the event time's varint, fastavro raises IndexError: the dead letter read "IndexError: string
    # index out of range", which tells an operator nothing about the record.
    data = TICKS.encode_object(Tick("SPY", 1.5, 10.0, 1_700_000_000_000, "P", "0"))
    for cut in range(7, 12):
        with pytest.raises(Rejected) as caught:
            TICKS.decode(data[:-cut])
        assert caught.value.reason in (Reason.BAD_AVRO, Reason.TRUNCATED)
        assert "IndexError" not in caught.value.message and "schema id 1" in caught.value.message, caught.value
