"""Unit tests for ``tickcast.producer.columns``: a column mapping is checked when it is built."""

from __future__ import annotations

import pytest

from tickcast.producer.columns import ColumnMapping


def test_unknown_time_zone_is_refused_when_the_mapping_is_built() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        ColumnMapping(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="unknown time zone"):
        ColumnMapping(timezone="../../etc/passwd")


def test_mapping_needs_a_symbol_source_and_a_known_time_format() -> None:
    with pytest.raises(ValueError, match="symbol column or a constant_symbol"):
        ColumnMapping(symbol=None)
    with pytest.raises(ValueError, match="time_format 'epoch_ns'"):
        ColumnMapping(time_format="epoch_ns")
    with pytest.raises(ValueError, match="constant_symbol"):
        ColumnMapping(constant_symbol="not a symbol")
    assert ColumnMapping(symbol=None, constant_symbol="spy").constant_symbol == "spy"


def test_a_strptime_pattern_is_checked_once_when_the_mapping_is_built() -> None:
    for unreadable in ("%Q", "%Y%", "%V %Y", "%-d/%m/%Y"):
        with pytest.raises(ValueError, match="is not a pattern strptime can read"):
            ColumnMapping(time_format=unreadable)
    for readable in ("%Y-%m-%d %H:%M:%S.%f%z", "%d/%m/%y %I:%M %p %Z", "%G-W%V-%u", "%j %Y %%", "%c"):
        assert ColumnMapping(time_format=readable).time_format == readable
