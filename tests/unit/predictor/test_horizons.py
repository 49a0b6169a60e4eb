"""TICKCAST_HORIZONS spellings: what parses, what is refused, and the order the contract relies on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickcast.predictor.horizons import BadHorizon, Horizon, parse_horizon, parse_horizons


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
