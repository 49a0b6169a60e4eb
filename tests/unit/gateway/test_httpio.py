"""The gateway's small HTTP helpers: the symbols limit, the ETag of a list, and age_ms."""

from __future__ import annotations

import pytest

from tickcast.gateway.cache import Published
from tickcast.gateway.httpio import BadRequest, age_ms, etag_of, parse_symbols


def test_as_many_symbols_as_the_limit_are_accepted_and_one_more_refused() -> None:
    assert parse_symbols("A,B,C", limit=3) == frozenset({"A", "B", "C"})
    with pytest.raises(BadRequest, match="4 symbols named, at most 3"):
        parse_symbols("A,B,C,D", limit=3)


def test_the_etag_of_a_list_changes_when_any_prediction_in_it_does() -> None:
    # A client revalidating a list with If-None-Match gets 304 while the ETag is the same: it must name each
    # prediction's topic position, or a new prediction would be answered "not modified".
    listed = [Published(0, 10, "A", 0.0, 0.0, "{}"), Published(1, 20, "B", 0.0, 0.0, "{}")]
    newer = [listed[0], Published(1, 21, "B", 0.0, 0.0, "{}")]
    moved = [listed[0], Published(2, 20, "B", 0.0, 0.0, "{}")]
    tags = {etag_of(listed), etag_of(newer), etag_of(moved)}
    assert len(tags) == 3, f"different predictions share an ETag: {tags}"
    assert etag_of(list(listed)) == etag_of(listed)


def test_age_is_in_milliseconds_to_a_tenth() -> None:
    item = Published(0, 1, "A", 0.0, 1_000.0, "{}")
    assert age_ms(item, now_s=1.5004) == 500.4
    assert age_ms(item, now_s=0.5) == -500.0  # the clocks disagree: said as it is
