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
    assert data[:5] == b"\x00" + (5).to_bytes(4, "big")


# ---------------------------------------------------------------- key rotation

OLD, NEW, UNKNOWN = b"o" * 32, b"n" * 32, b"u" * 32


def signer(key: bytes, previous: tuple[bytes, ...] = (), **where: str) -> SnapshotCodec:
    where = {"group": "g", "topic": "ticks", **where}
    return SnapshotCodec(key, "linear", model_spec("linear").version, worker="w", previous_keys=previous, **where)


def test_a_snapshot_signed_with_the_old_key_loads_after_rotation() -> None:
    state = trained_state().states["SPY"]
    before = signer(OLD).encode("SPY", state, created_at=1)
    rotated = signer(NEW, previous=(OLD,))
    assert rotated.decode(before, key=b"SPY").state.ticks_learned == state.ticks_learned
    assert rotated.rank(before, b"SPY") is not None
    # New snapshots are signed with the new key only: a worker that dropped the old key still reads them.
    after = rotated.encode("SPY", state, created_at=2)
    assert signer(NEW).decode(after).symbol == "SPY"
    with pytest.raises(SnapshotRefused) as caught:
        signer(OLD).decode(after)
    assert caught.value.reason == RefusalReason.BAD_SIGNATURE


def test_a_snapshot_signed_with_a_key_no_longer_listed_is_refused() -> None:
    before = signer(UNKNOWN).encode("SPY", trained_state().states["SPY"], created_at=1)
    with pytest.raises(SnapshotRefused) as caught:
        signer(NEW, previous=(OLD,)).decode(before)
    assert caught.value.reason == RefusalReason.BAD_SIGNATURE
    assert "TICKCAST_SNAPSHOT_PREVIOUS_KEYS" in caught.value.message
    assert signer(NEW, previous=(OLD,)).rank(before, b"SPY") is None


def test_every_listed_key_is_tried_whichever_signed_the_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    # No early exit: verifying takes as many HMACs for the current key as for the last listed one, so the
    # time taken does not say which key signed it.
    import tickcast.predictor.snapshots as snapshots

    state = trained_state().states["SPY"]
    reader = signer(NEW, previous=(OLD, UNKNOWN))
    signed = {key: signer(key).encode("SPY", state, created_at=1) for key in (NEW, OLD, UNKNOWN)}
    digests: list[bytes] = []
    real_new = snapshots.hmac.new

    def counting_new(key: bytes, *args: object, **kwargs: object) -> object:
        digests.append(key)
        return real_new(key, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshots.hmac, "new", counting_new)
    for key, data in signed.items():
        digests.clear()
        assert reader.decode(data).symbol == "SPY", key
        assert digests == [NEW, OLD, UNKNOWN], f"signed by {key!r}: HMACs with {digests}"


# ---------------------------------------------------------------- binding to group, topic, symbol and offset


def test_a_genuine_snapshot_replayed_under_another_symbol_is_refused() -> None:
    data = signer(NEW).encode("SPY", trained_state().states["SPY"], created_at=1)
    with pytest.raises(SnapshotRefused) as caught:
        signer(NEW).decode(data, key=b"QQQ")
    assert caught.value.reason == RefusalReason.MISPLACED and "'QQQ'" in caught.value.message
    assert signer(NEW).rank(data, b"QQQ") is None
    assert signer(NEW).decode(data, key=b"SPY").symbol == "SPY"


@pytest.mark.parametrize(
    "changes",
    [
        {"applied_offset": 10},  # rolled back to an earlier offset
        {"applied_offset": 10**9},  # or forward, to skip replays
        {"symbol": "QQQ"},
        {"partition": 0},
        {"generation": 99},
        {"group": "other-group"},
        {"topic": "other-ticks"},
    ],
)
def test_a_snapshot_whose_binding_was_rewritten_is_refused(changes: dict[str, object]) -> None:
    data = signer(NEW).encode("SPY", trained_state().states["SPY"], created_at=1)
    with pytest.raises(SnapshotRefused) as caught:
        signer(NEW).decode(rewrite(data, **changes))
    assert caught.value.reason == RefusalReason.BAD_SIGNATURE


@pytest.mark.parametrize("where", [{"group": "other-group"}, {"topic": "other-ticks"}])
def test_a_genuine_snapshot_of_another_group_or_topic_is_refused(where: dict[str, str]) -> None:
    # Same key (one key for several deployments): the signature checks out, the place does not.
    data = signer(NEW, **where).encode("SPY", trained_state().states["SPY"], created_at=1)
    with pytest.raises(SnapshotRefused) as caught:
        signer(NEW).decode(data, key=b"SPY")
    assert caught.value.reason == RefusalReason.MISPLACED
    assert next(iter(where.values())) in caught.value.message
    assert signer(NEW).rank(data, b"SPY") is None


def test_a_snapshot_of_the_unbound_contract_is_read_and_refused_with_its_reason() -> None:
    # Written by a worker before snapshots named their group and topic: schema id 4 (snapshot-v2.avsc).
    v2 = fastavro.parse_schema(without_logical_types(load_schema("snapshot-v2.avsc")))
    data = codec().encode("SPY", trained_state().states["SPY"], created_at=1)
    record = fastavro.schemaless_reader(io.BytesIO(data[5:]), SCHEMA, None)
    assert isinstance(record, dict)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, v2, {k: v for k, v in record.items() if k not in ("group", "topic")})
    framed = b"\x00" + (4).to_bytes(4, "big") + out.getvalue()
    with pytest.raises(SnapshotRefused) as caught:
        codec().decode(framed)
    assert caught.value.reason == RefusalReason.OLD_CONTRACT
    assert "schema id 4" in caught.value.message and "group" in caught.value.message
    assert codec().rank(framed) is None
