"""Unit tests for ``tickcast.producer.row_errors``: how a bad row reads, and a replay's running summary."""

from __future__ import annotations

from collections import Counter

from tickcast.common.errors import Reason, RowReason
from tickcast.producer.row_errors import ReplaySummary, RowError


def test_row_error_renders_file_line_column_value_and_message() -> None:
    error = RowError("ticks.csv", 17, "price", "abc", RowReason.BAD_NUMBER, "not a number")
    assert str(error) == "ticks.csv:17: column 'price' value 'abc': not a number"
    assert str(RowError("t.csv", 2, None, None, RowReason.BAD_CSV, "broken")) == "t.csv:2: broken"
    long = RowError("t.csv", 2, "symbol", "X" * 500, Reason.BAD_SYMBOL, "too long")
    assert "X" * 60 + "...'" in str(long) and len(str(long)) < 120


def test_summary_counts_and_renders() -> None:
    summary = ReplaySummary()
    assert summary.line() == "sent=0 skipped=0"
    first = RowError("t.csv", 5, "ts_et", "x", RowReason.BAD_TIME, "not an ISO-8601 time")
    summary.record_error(first)
    summary.record_error(RowError("t.csv", 7, "price", "0", Reason.BAD_PRICE, "price must be > 0"))
    summary.record_error(RowError("t.csv", 9, "ts_et", "y", RowReason.BAD_TIME, "not an ISO-8601 time"))
    summary.sent = 10
    assert summary.line() == "sent=10 skipped=3 (bad_price=1, bad_time=2)"
    assert summary.first_error is first
    assert summary.skipped == Counter({RowReason.BAD_TIME: 2, Reason.BAD_PRICE: 1})
