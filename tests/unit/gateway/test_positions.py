from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickcast.gateway.positions import BadPosition, decode, encode

positions = st.dictionaries(st.integers(0, 99_999), st.integers(-1, 2**63 - 1), min_size=1, max_size=200)


@given(positions)
def test_an_event_id_decodes_to_the_positions_it_encodes(value: dict[int, int]) -> None:
    assert decode(encode(value)) == value


@given(st.text(max_size=200))
def test_any_text_either_decodes_or_is_refused_with_a_reason(text: str) -> None:
    try:
        decoded = decode(text)
    except BadPosition as exc:
        assert str(exc)
    else:
        assert decode(encode(decoded)) == decoded


@pytest.mark.parametrize("text", ["", "0", "a:1", "0:1,", "0:1;1:2", "0:-5", "1:2,1:3", "0:" + "9" * 25])
def test_malformed_ids_are_refused(text: str) -> None:
    with pytest.raises(BadPosition):
        decode(text)
