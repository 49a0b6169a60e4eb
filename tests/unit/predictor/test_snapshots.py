"""Snapshots: round trip, signature, format and model checks; a refused snapshot never unpickles."""

from __future__ import annotations

import io
import pickle

import fastavro
import pytest

from tickcast.common.contracts import load_schema
from tickcast.common.contracts.codec import without_logical_types
from tickcast.common.records import Lineage, Tick
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.models import model_spec
from tickcast.predictor.snapshots import RefusalReason, SnapshotCodec, SnapshotRefused

SCHEMA = fastavro.parse_schema(without_logical_types(load_schema("snapshot.avsc")))


def trained_state() -> Forecaster:
    forecaster = Forecaster(model_spec("linear"), worker="w")
    for i in range(200):
        forecaster.process(Tick("SPY", 100.0 + (i % 5) * 0.01, 1.0, i), Lineage("ticks", 3, i, i), now_us=i)
    return forecaster


def codec(key: bytes = b"k") -> SnapshotCodec:
    return SnapshotCodec(key, "linear", model_spec("linear").version, worker="w")


def rewrite(data: bytes, **changes: object) -> bytes:
    """Change fields of an encoded snapshot without re-signing it, as an attacker or a foreign writer would."""
    record = fastavro.schemaless_reader(io.BytesIO(data[5:]), SCHEMA, None)
    assert isinstance(record, dict)
    record.update(changes)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMA, record)
    return data[:5] + out.getvalue()


def test_round_trip_keeps_the_model_learning_where_it_was() -> None:
    forecaster = trained_state()
    state = forecaster.states["SPY"]
    restored = codec().decode(codec().encode("SPY", state, created_at=1)).state
    assert restored.ticks_learned == state.ticks_learned > 100
    assert (restored.partition, restored.applied_offset) == (3, 199)
    x = {"r1_bps": 1.0, "r2_bps": -1.0, "sigma_bps": 2.0}
    assert restored.model.predict_one(x) == state.model.predict_one(x)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"signature": b""}, RefusalReason.UNSIGNED),
        ({"payload": pickle.dumps({"evil": True})}, RefusalReason.BAD_SIGNATURE),
        ({"applied_offset": 10**9}, RefusalReason.BAD_SIGNATURE),
    ],
)
def test_tampered_or_unsigned_snapshots_are_refused(changes: dict[str, object], reason: RefusalReason) -> None:
    data = codec().encode("SPY", trained_state().states["SPY"], created_at=1)
    with pytest.raises(SnapshotRefused) as caught:
        codec().decode(rewrite(data, **changes))
    assert caught.value.reason == reason
    assert "SPY" in caught.value.message


def test_a_snapshot_signed_with_another_key_is_refused() -> None:
    data = codec(b"theirs").encode("SPY", trained_state().states["SPY"], created_at=1)
    with pytest.raises(SnapshotRefused, match="bad_signature"):
        codec(b"ours").decode(data)


def test_a_newer_format_is_refused_with_a_clear_message() -> None:
    theirs = codec()
    data = theirs.encode("SPY", trained_state().states["SPY"], created_at=1)
    record = fastavro.schemaless_reader(io.BytesIO(data[5:]), SCHEMA, None)
    assert isinstance(record, dict)
    record["format_version"] = 2
    record["signature"] = theirs._sign(record)  # a genuine, signed snapshot from a newer worker
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMA, record)
    with pytest.raises(SnapshotRefused) as caught:
        codec().decode(data[:5] + out.getvalue())
    assert caught.value.reason == RefusalReason.UNKNOWN_FORMAT and "format 2" in caught.value.message


def test_a_snapshot_of_another_model_is_refused() -> None:
    data = codec().encode("SPY", trained_state().states["SPY"], created_at=1)
    other = SnapshotCodec(b"k", "pa", "1", worker="w")
    with pytest.raises(SnapshotRefused) as caught:
        other.decode(data)
    assert caught.value.reason == RefusalReason.OTHER_MODEL


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x00\x00\x03", b"garbage", b"\x00\x00\x00\x00\x01abc"])
def test_foreign_bytes_are_refused_not_crashed_on(data: bytes) -> None:
    with pytest.raises(SnapshotRefused) as caught:
        codec().decode(data)
    assert caught.value.reason == RefusalReason.UNDECODABLE


def test_a_snapshot_pickled_by_another_river_release_is_refused_before_unpickling() -> None:
    theirs = SnapshotCodec(b"k", "linear", model_spec("linear").version, worker="w", river_version="0.19.0")
    data = theirs.encode("SPY", trained_state().states["SPY"], created_at=1)
    with pytest.raises(SnapshotRefused) as caught:
        codec().decode(data)
    assert caught.value.reason == RefusalReason.OTHER_RIVER
    assert "River 0.19.0" in caught.value.message and "starts fresh" in caught.value.message


def test_rank_prefers_a_newer_generation_over_a_later_offset_and_ignores_untrusted_records() -> None:
    state = trained_state().states["SPY"]
    zombie = codec().encode("SPY", state, created_at=2, generation=4)
    owner = codec().encode("SPY", state, created_at=1, generation=5)
    zombie_rank, owner_rank = codec().rank(zombie), codec().rank(owner)
    assert zombie_rank is not None and owner_rank is not None and owner_rank > zombie_rank
    assert codec().rank(rewrite(owner, generation=10**6)) is None  # a forged generation does not win
    assert codec().rank(b"garbage") is None


def test_a_snapshot_of_the_earlier_contract_is_read_and_refused_as_another_river_release() -> None:
    # Written by a worker before snapshots named their River release: contract schema-id 3 (snapshot-v1.avsc).
    v1 = fastavro.parse_schema(without_logical_types(load_schema("snapshot-v1.avsc")))
    data = codec().encode("SPY", trained_state().states["SPY"], created_at=1)
    record = fastavro.schemaless_reader(io.BytesIO(data[5:]), SCHEMA, None)
    assert isinstance(record, dict)
    old = {k: v for k, v in record.items() if k not in ("river_version", "generation")}
    out = io.BytesIO()
    fastavro.schemaless_writer(out, v1, old)
    framed = b"\x00" + (3).to_bytes(4, "big") + out.getvalue()
    with pytest.raises(SnapshotRefused) as caught:
        codec().decode(framed)
    assert caught.value.reason == RefusalReason.OTHER_RIVER and "schema id 3" in caught.value.message
    assert codec().rank(framed) is None  # never ranked above a current snapshot


def test_the_current_contract_has_its_own_schema_id() -> None:
    data = codec().encode("SPY", trained_state().states["SPY"], created_at=1)
    assert data[:5] == b"\x00" + (4).to_bytes(4, "big")
