"""The tick contract's rules and the worker's intake: every rejection names its reason."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import TICK_SCHEMA_FILE
from tickcast.common.errors import Reason, Rejected
from tickcast.common.records import Tick
from tickcast.common.validation import TickLimits, validate_tick
from tickcast.predictor.intake import read_tick

NOW = 1_700_000_000_000
CODEC = AvroCodec(open_schema_store(None), "ticks-value", load_schema(TICK_SCHEMA_FILE))


def tick(**changes: object) -> Tick:
    fields: dict[str, object] = {"symbol": "SPY", "price": 431.5, "size": 100.0, "event_time": NOW}
    fields.update(changes)
    return Tick(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"price": math.nan}, Reason.BAD_PRICE),
        ({"price": math.inf}, Reason.BAD_PRICE),
        ({"price": 0.0}, Reason.BAD_PRICE),
        ({"price": -1.0}, Reason.BAD_PRICE),
        ({"size": -1.0}, Reason.BAD_SIZE),
        ({"size": math.nan}, Reason.BAD_SIZE),
        ({"symbol": "spy"}, Reason.BAD_SYMBOL),
        ({"symbol": ""}, Reason.BAD_SYMBOL),
        ({"symbol": "A" * 33}, Reason.BAD_SYMBOL),
        ({"symbol": "SP Y"}, Reason.BAD_SYMBOL),
        ({"symbol": "SPY\n"}, Reason.BAD_SYMBOL),
        ({"event_time": NOW + 10 * 60 * 1000}, Reason.FUTURE_TIME),
        ({"event_time": 0}, Reason.ANCIENT_TIME),
    ],
)
def test_bad_ticks_are_rejected_naming_the_field(changes: dict[str, object], reason: Reason) -> None:
    with pytest.raises(Rejected) as caught:
        validate_tick(tick(**changes), NOW)
    assert caught.value.reason == reason
    field = next(iter(changes))
    assert field.replace("event_time", "event") in caught.value.message or reason == Reason.BAD_SYMBOL


@pytest.mark.parametrize(
    "changes",
    [
        {"size": 0.0},
        {"symbol": "BRK.B"},
        {"symbol": "BTC/USD"},
        {"symbol": "ES:Z25"},
        {"event_time": NOW + 60_000},  # within clock-skew tolerance
        {"event_time": 1_381_152_600_000},  # 2013: replayed history is fine
    ],
)
def test_valid_ticks_pass(changes: dict[str, object]) -> None:
    assert validate_tick(tick(**changes), NOW) == tick(**changes)


def test_intake_checks_key_size_and_emptiness() -> None:
    good = CODEC.encode(tick().to_avro())
    limits = TickLimits()
    assert read_tick(b"SPY", good, CODEC, NOW, limits, 1024).symbol == "SPY"
    cases = [
        (None, good, Reason.MISSING_KEY),
        (b"", good, Reason.MISSING_KEY),
        (b"IBM", good, Reason.KEY_MISMATCH),
        (b"SPY", b"", Reason.EMPTY_VALUE),
        (b"SPY", None, Reason.EMPTY_VALUE),
        (b"SPY", good + b"x" * 2000, Reason.OVERSIZED),
    ]
    for key, value, reason in cases:
        with pytest.raises(Rejected) as caught:
            read_tick(key, value, CODEC, NOW, limits, 1024)
        assert caught.value.reason == reason, (key, reason)


@given(
    symbol=st.text(max_size=40),
    price=st.floats(),
    size=st.floats(),
    event_time=st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
def test_validator_accepts_or_rejects_never_crashes(symbol: str, price: float, size: float, event_time: int) -> None:
    candidate = Tick(symbol, price, size, event_time)
    try:
        accepted = validate_tick(candidate, NOW)
    except Rejected as rejected:
        assert rejected.reason in Reason
        return
    assert math.isfinite(accepted.price) and accepted.price > 0 and accepted.size >= 0


@given(key=st.binary(max_size=40) | st.none(), value=st.binary(max_size=300) | st.none())
def test_intake_of_arbitrary_bytes_only_raises_rejected(key: bytes | None, value: bytes | None) -> None:
    with contextlib.suppress(Rejected):
        read_tick(key, value, CODEC, NOW, TickLimits(), 256)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"size": math.inf}, Reason.BAD_SIZE),
        ({"size": -math.inf}, Reason.BAD_SIZE),
        ({"symbol": ".SPY"}, Reason.BAD_SYMBOL),
        ({"symbol": "-X"}, Reason.BAD_SYMBOL),
        ({"symbol": "/"}, Reason.BAD_SYMBOL),
        ({"event_time": NOW + TickLimits().max_future_ms + 1}, Reason.FUTURE_TIME),
        ({"event_time": TickLimits().min_event_time_ms - 1}, Reason.ANCIENT_TIME),
    ],
)
def test_just_outside_the_contract_is_rejected(changes: dict[str, object], reason: Reason) -> None:
    with pytest.raises(Rejected) as caught:
        validate_tick(tick(**changes), NOW)
    assert caught.value.reason == reason, f"{changes} rejected as {caught.value.reason}, not {reason}"


@pytest.mark.parametrize(
    "changes",
    [
        {"symbol": "A" * 32},  # the longest symbol the contract allows
        {"event_time": NOW + TickLimits().max_future_ms},  # exactly at the clock-skew tolerance: not "more than"
        {"event_time": TickLimits().min_event_time_ms},  # 1990-01-01 itself: not "before 1990"
    ],
)
def test_the_edges_of_the_contract_are_accepted(changes: dict[str, object]) -> None:
    assert validate_tick(tick(**changes), NOW) == tick(**changes)


def test_the_limits_given_are_the_ones_applied() -> None:
    # The worker passes TICKCAST_MAX_FUTURE_MS through TickLimits: a tighter tolerance must be honoured.
    tight = TickLimits(max_future_ms=1_000, min_event_time_ms=NOW - 1_000)
    for changes, reason in [
        ({"event_time": NOW + 2_000}, Reason.FUTURE_TIME),
        ({"event_time": NOW - 2_000}, Reason.ANCIENT_TIME),
    ]:
        with pytest.raises(Rejected) as caught:
            validate_tick(tick(**changes), NOW, tight)
        assert caught.value.reason == reason, f"{changes} under {tight}"
