"""Typed rejections: every way a record or a tick-file row can be refused has a stable reason code.

Decoding and validation raise :class:`Rejected` and nothing else; the worker
turns it into a dead letter whose headers carry the code and the message.
A row of a tick file is refused with a :class:`RowReason` when it cannot even be read
as a tick, or with a :class:`Reason` when the tick it reads as fails validation.

The values are a contract: they appear in dead-letter headers, the ``reason`` label of
``tickcast_dead_letters_total`` (and the alerts and dashboards built on it), replay summaries
and logs. Renaming a member is free; changing a value is not.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Stable reason codes, used in dead-letter headers, metrics and logs."""

    EMPTY_VALUE = "empty_value"
    MISSING_KEY = "missing_key"
    OVERSIZED = "oversized"
    BAD_MAGIC = "bad_magic_byte"
    TRUNCATED = "truncated"
    UNKNOWN_SCHEMA = "unknown_schema_id"
    BAD_AVRO = "bad_avro"
    KEY_MISMATCH = "key_symbol_mismatch"
    BAD_SYMBOL = "bad_symbol"
    BAD_PRICE = "bad_price"
    BAD_SIZE = "bad_size"
    FUTURE_TIME = "event_time_in_future"
    ANCIENT_TIME = "event_time_too_old"
    PROCESSING_ERROR = "processing_error"
    OUTPUT_REFUSED = "output_refused"
    """The prediction was made but librdkafka refused to produce it; the tick is kept here instead."""


class RowReason(StrEnum):
    """Why a row of a tick file could not be read as a tick at all (before any :class:`Reason` applies).

    >>> f"skipped {RowReason.BAD_TIME}"
    'skipped bad_time'
    """

    BAD_CSV = "bad_csv"
    """The CSV reader could not parse the record (an unclosed quote, a field over the size limit), or the record
    has more non-empty cells than the header names (its values would be read into the wrong columns)."""
    MISSING_COLUMN = "missing_column"
    """The row has fewer cells than the mapping needs."""
    MISSING_VALUE = "missing_value"
    """A mapped cell is empty or blank."""
    BAD_TIME = "bad_time"
    """The time cell does not match the mapping's time format."""
    BAD_NUMBER = "bad_number"
    """A price or size cell is not a number."""


class Rejected(Exception):
    """A record tickcast refuses, with a reason code and a message naming what was wrong.

    >>> err = Rejected(Reason.BAD_PRICE, "price must be > 0, got -1.0")
    >>> str(err)
    'bad_price: price must be > 0, got -1.0'
    """

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message
