from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickcast.gateway.positions import MAX_ID_LENGTH, BadPosition, decode, encode

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


def id_of_length(length: int) -> str:
    """A valid event id exactly ``length`` characters long: one-digit offsets, then digits added until it is."""
    prefixes: list[str] = []
    # Room for one more pair of one digit after those so far (one digit each):
    while len(",".join(prefixes)) + len(prefixes) + len(f",{len(prefixes)}:1") <= length:
        prefixes.append(f"{len(prefixes)}:")
    digits = [1] * len(prefixes)
    extra = length - len(",".join(prefixes)) - len(prefixes)
    for index in range(len(digits)):
        added = min(18, extra)
        digits[index] += added
        extra -= added
    text = ",".join(prefix + "1" * count for prefix, count in zip(prefixes, digits, strict=True))
    assert len(text) == length, len(text)
    return text


def test_the_longest_id_is_accepted_and_one_more_character_refused() -> None:
    assert len(decode(id_of_length(MAX_ID_LENGTH))) > 1000
    with pytest.raises(BadPosition, match="characters"):
        decode(id_of_length(MAX_ID_LENGTH + 1))


def test_offset_minus_one_is_the_lowest() -> None:
    assert decode("0:-1") == {0: -1}
    with pytest.raises(BadPosition, match="below -1"):
        decode("0:-2")


def test_spaces_around_pairs_are_allowed() -> None:
    assert decode(" 0:12, 3:40 ") == {0: 12, 3: 40}
