"""From raw Kafka bytes to a valid :class:`Tick`, or a typed :class:`Rejected` saying why not."""

from __future__ import annotations

from tickcast.common.contracts import AvroCodec
from tickcast.common.errors import Reason, Rejected
from tickcast.common.records import Tick
from tickcast.common.validation import TickLimits, validate_tick


def read_tick(
    key: bytes | None, value: bytes | None, codec: AvroCodec, now_ms: int, limits: TickLimits, max_bytes: int
) -> Tick:
    """Decode, check the key against the symbol, and validate; raise :class:`Rejected` on any problem.

    >>> from tickcast.common.contracts import open_schema_store, load_schema
    >>> codec = AvroCodec(open_schema_store(None), "ticks-value", load_schema("tick.avsc"))
    >>> good = codec.encode({"symbol": "IBM", "price": 180.0, "size": 5.0, "event_time": 1_381_152_600_000})
    >>> read_tick(b"IBM", good, codec, 1_381_152_600_000, TickLimits(), 65536).price
    180.0
    >>> read_tick(b"SPY", good, codec, 1_381_152_600_000, TickLimits(), 65536)
    Traceback (most recent call last):
    ...
    tickcast.common.errors.Rejected: key_symbol_mismatch: record key 'SPY' differs from symbol 'IBM'
    """
    if not value:
        raise Rejected(Reason.EMPTY_VALUE, "record value is empty (null or zero bytes)")
    if len(value) > max_bytes:
        raise Rejected(Reason.OVERSIZED, f"record value is {len(value)} bytes, limit {max_bytes}")
    if not key:
        raise Rejected(Reason.MISSING_KEY, "record has no key; ticks must be keyed by symbol")
    # The tick contract's fields in Tick's own order (a test holds the two together).
    tick = Tick(*codec.decode_values(value))
    key_text = key.decode("utf-8", errors="replace")
    if key_text != tick.symbol:
        raise Rejected(Reason.KEY_MISMATCH, f"record key {key_text[:64]!r} differs from symbol {tick.symbol[:64]!r}")
    return validate_tick(tick, now_ms, limits)
