"""TICKCAST_HORIZONS spellings: what parses, what is refused, and the order the contract relies on."""

from __future__ import annotations

import pickle
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickcast.predictor import horizons
from tickcast.predictor.horizons import (
    MAX_TICK_HORIZON,
    MAX_TIME_HORIZON_MS,
    BadHorizon,
    Horizon,
    parse_horizon,
    parse_horizons,
    signature,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500ms", Horizon(500)), ("10s", Horizon(10_000)), ("1m", Horizon(60_000)), (" 5t ", Horizon(5, True))],
)
def test_spellings(text: str, expected: Horizon) -> None:
    assert parse_horizon(text) == expected


@pytest.mark.parametrize("text", ["", "1", "1h", "-1s", "0ms", "65t", "2d", "1.5s", "1000000m"])
def test_refused_spellings(text: str) -> None:
    with pytest.raises(BadHorizon):
        parse_horizons(text)


@given(st.lists(st.integers(1, 86_400), min_size=1, max_size=6, unique=True))
def test_the_shortest_comes_first_and_labels_round_trip(seconds: list[int]) -> None:
    horizons = parse_horizons(",".join(f"{s}s" for s in seconds))
    assert [h.amount for h in horizons] == sorted(s * 1000 for s in seconds)
    assert parse_horizons(",".join(h.label for h in horizons)) == horizons


def test_the_largest_horizons_allowed_parse() -> None:
    assert parse_horizon(f"{MAX_TICK_HORIZON}t") == Horizon(MAX_TICK_HORIZON, in_ticks=True)
    assert parse_horizon("1440m") == Horizon(MAX_TIME_HORIZON_MS)


def test_a_tick_horizon_has_no_event_time_span() -> None:
    assert (Horizon(5, in_ticks=True).horizon_ms, Horizon(1500).horizon_ms) == (0, 1500)


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("1ms,64t", ["64t", "1ms"]),  # tick horizons first, however short the time ones
        ("10s, 1s,", ["1s", "10s"]),  # a trailing or doubled comma is no horizon
        ("1s,,5t", ["5t", "1s"]),
    ],
)
def test_the_list_order_and_blank_entries(text: str, labels: list[str]) -> None:
    assert [h.label for h in parse_horizons(text)] == labels


def test_a_horizon_and_a_signature_load_as_the_workers_own_objects() -> None:
    horizon = parse_horizon("250ms")
    assert pickle.loads(pickle.dumps(Horizon(250))) is horizon, "an unpickled horizon is a copy, not the shared one"
    assert signature(parse_horizons("1s,10s")) is sys.intern("1s,10s"), "the signature is not interned"


def test_the_shared_horizons_are_capped_and_stay_shared_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(horizons, "_CANONICAL", {})
    monkeypatch.setattr(horizons, "_CANONICAL_CAP", 2)
    first = parse_horizon("1s")
    parse_horizon("2s")
    assert parse_horizon("3s") == Horizon(3000)
    assert len(horizons._CANONICAL) == 2, f"the cap of 2 let {len(horizons._CANONICAL)} horizons in"
    assert parse_horizon("1000ms") is first, "a horizon shared before the cap was reached is no longer shared"
