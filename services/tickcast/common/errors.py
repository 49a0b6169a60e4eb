"""Typed rejections: every way a record can be refused has a stable reason code.

Decoding and validation raise :class:`Rejected` and nothing else; the worker
turns it into a dead letter whose headers carry the code and the message.
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
