"""Unit tests for ``tickcast.common.errors``: reason codes are a wire contract, so their values are pinned."""

from __future__ import annotations

from tickcast.common.errors import Reason, Rejected, RowReason

# What dead-letter headers, the `reason` metric label (and the alerts built on it) and replay summaries carry.
RECORD_REASONS = {
    "EMPTY_VALUE": "empty_value",
    "MISSING_KEY": "missing_key",
    "OVERSIZED": "oversized",
    "BAD_MAGIC": "bad_magic_byte",
    "TRUNCATED": "truncated",
    "UNKNOWN_SCHEMA": "unknown_schema_id",
    "BAD_AVRO": "bad_avro",
    "KEY_MISMATCH": "key_symbol_mismatch",
    "BAD_SYMBOL": "bad_symbol",
    "BAD_PRICE": "bad_price",
    "BAD_SIZE": "bad_size",
    "FUTURE_TIME": "event_time_in_future",
    "ANCIENT_TIME": "event_time_too_old",
    "PROCESSING_ERROR": "processing_error",
    "OUTPUT_REFUSED": "output_refused",
}
ROW_REASONS = {
    "BAD_CSV": "bad_csv",
    "MISSING_COLUMN": "missing_column",
    "MISSING_VALUE": "missing_value",
    "BAD_TIME": "bad_time",
    "BAD_NUMBER": "bad_number",
}


def test_reason_values_are_the_published_codes() -> None:
    assert {member.name: member.value for member in Reason} == RECORD_REASONS
    assert {member.name: member.value for member in RowReason} == ROW_REASONS


def test_record_and_row_reasons_never_share_a_code() -> None:
    # A replay summary counts both kinds in one table; one code must mean one thing.
    assert not set(RECORD_REASONS.values()) & set(ROW_REASONS.values())


def test_a_reason_reads_as_its_code_in_text_and_as_a_mapping_key() -> None:
    assert f"{RowReason.BAD_CSV}" == str(RowReason.BAD_CSV) == "bad_csv"
    assert {Reason.BAD_PRICE: 1}["bad_price"] == 1
    assert str(Rejected(Reason.OVERSIZED, "70000 bytes")) == "oversized: 70000 bytes"
