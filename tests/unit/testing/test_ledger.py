"""The after-fault ledger: which ticks count as valid, and which broken promise each check names."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import TICK_SCHEMA_FILE
from tickcast.common.records import Tick
from tickcast.testing.drain import TopicRecord
from tickcast.testing.ledger import Ledger, classify, learning_breaks

CODEC = AvroCodec(open_schema_store(None), "ticks-value", load_schema(TICK_SCHEMA_FILE))
GOOD = CODEC.encode(Tick("SPY", 431.5, 100.0, 1_700_000_000_000).to_avro())


def test_ticks_are_judged_by_the_workers_intake_rules() -> None:
    records = [
        TopicRecord(0, 0, b"SPY", GOOD),
        TopicRecord(0, 1, b"SPY", b"\x00" + b"\x01" * 999_800),
        TopicRecord(0, 2, b"IBM", GOOD),
        TopicRecord(1, 0, None, GOOD),
        TopicRecord(1, 1, b"SPY\n", CODEC.encode(Tick("SPY\n", 1.0, 1.0, 1_700_000_000_000).to_avro())),
    ]
    valid, bad = classify(records, "t")
    assert valid == {("t", 0, 0)}
    assert bad == {("t", 0, 1), ("t", 0, 2), ("t", 1, 0), ("t", 1, 1)}


def ledger(**changes: object) -> Ledger:
    fields: dict[str, object] = {
        "valid": frozenset({("t", 0, 0), ("t", 0, 1)}),
        "bad": frozenset({("t", 0, 2)}),
        "predicted": {("t", 0, 0): 1, ("t", 0, 1): 2},
        "dead_lettered": {("t", 0, 2): "bad_magic_byte"},
        "breaks": (),
    }
    fields.update(changes)
    return Ledger(**fields)  # type: ignore[arg-type]


def test_a_clean_run_passes_and_counts_duplicates() -> None:
    clean = ledger()
    clean.check()
    assert clean.duplicates == 1 and not clean.lost


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"predicted": {("t", 0, 0): 1}}, "1 valid ticks without a prediction"),
        ({"dead_lettered": {}}, "1 bad ticks not in the dead-letter topic"),
        ({"breaks": ("SPY: ticks_learned 3 -> 1 at offset 9",)}, "1 learning breaks"),
    ],
)
def test_each_broken_promise_is_named(changes: dict[str, object], complaint: str) -> None:
    with pytest.raises(AssertionError, match=complaint):
        ledger(**changes).check()


def test_a_refused_valid_tick_is_answered_but_not_predicted() -> None:
    refused = ledger(predicted={("t", 0, 0): 1}, dead_lettered={("t", 0, 2): "bad_magic_byte", ("t", 0, 1): "x"})
    with pytest.raises(AssertionError, match="without a prediction"):
        refused.check()
    refused.check(refusals_allowed=True)
    assert not refused.lost


def test_learning_is_judged_on_the_first_copy_of_each_tick_in_offset_order() -> None:
    def p(offset: int, learned: int) -> SimpleNamespace:
        return SimpleNamespace(symbol="SPY", source_partition=0, source_offset=offset, ticks_learned=learned)

    # A replayed duplicate (offset 1 again, later) and arrival out of offset order are not breaks.
    assert learning_breaks([p(0, 0), p(2, 2), p(1, 1), p(1, 1)]) == []  # type: ignore[list-item]
    assert learning_breaks([p(0, 0), p(1, 1), p(2, 0)]) == ["SPY: ticks_learned 1 -> 0 at offset 2"]  # type: ignore[list-item]
