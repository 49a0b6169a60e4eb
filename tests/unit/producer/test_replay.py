"""Unit tests for ``tickcast.producer.replay``: CSV parsing, per-row errors and file errors."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import require_trades_file
from tickcast.common.errors import Reason, RowReason
from tickcast.common.records import Tick
from tickcast.producer.columns import ColumnMapping
from tickcast.producer.replay import read_ticks
from tickcast.producer.row_errors import ReplayError, RowError

NOW_MS = 2_000_000_000_000  # 2033: every 2013 time is in the past, nothing is "in the future"
OPEN_2013_10_07_UTC_MS = 1_381_152_600_000  # 2013-10-07T13:30:00Z = 09:30 New York (EDT, UTC-4)
NY = ColumnMapping(timezone="America/New_York", venue="exchange", condition="condition")
HEADER = "ts_et,symbol,price,size,exchange,condition\n"
GOOD = "2013-10-07T09:30:00,SPY,167.41,100,P,20002000\n"


def write(tmp_path: Path, text: str, name: str = "ticks.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read_all(path: Path, mapping: ColumnMapping = NY, now_ms: int = NOW_MS) -> list[Tick | RowError]:
    return list(read_ticks(path, mapping, now_ms=now_ms))


def only_error(items: list[Tick | RowError]) -> RowError:
    errors = [item for item in items if isinstance(item, RowError)]
    assert len(errors) == 1, items
    return errors[0]


# --- good rows -------------------------------------------------------------------------------------------


def test_good_rows_become_ticks_with_normalised_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER + GOOD + "2013-10-07T09:30:00.250, spy ,167.42,200,,\n" + "2013-10-07T09:30:01,bac,14.2,0, Q , \n",
    )
    assert read_all(path) == [
        Tick("SPY", 167.41, 100.0, OPEN_2013_10_07_UTC_MS, "P", "20002000"),
        Tick("SPY", 167.42, 200.0, OPEN_2013_10_07_UTC_MS + 250, None, None),
        Tick("BAC", 14.2, 0.0, OPEN_2013_10_07_UTC_MS + 1000, "Q", None),
    ]


def test_size_defaults_to_zero_without_a_size_column_and_unmapped_columns_are_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_et,symbol,price,size,junk\n2013-10-07T13:30:00,SPY,1.5,abc,whatever\n")
    (tick,) = read_all(path, ColumnMapping(size=None))
    assert tick == Tick("SPY", 1.5, 0.0, OPEN_2013_10_07_UTC_MS)


def test_blank_lines_are_skipped_but_counted_and_quoted_newlines_keep_physical_line_numbers(
    tmp_path: Path,
) -> None:
    text = HEADER + "\n" + '2013-10-07T09:30:00,SPY,167.41,100,P,"two\nlines"\n' + "\n" + "x,SPY,1,1,P,\n"
    items = read_all(write(tmp_path, text))
    assert isinstance(items[0], Tick) and items[0].condition == "two\nlines"
    error = only_error(items)
    assert (error.line, error.column, error.value, error.reason) == (6, "ts_et", "x", RowReason.BAD_TIME)


def test_header_names_may_be_padded_and_a_utf8_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfts_et , symbol,price,size\n2013-10-07T13:30:00,SPY,1,2\n")
    assert read_all(path, ColumnMapping()) == [Tick("SPY", 1.0, 2.0, OPEN_2013_10_07_UTC_MS)]


def test_now_ms_defaults_to_the_wall_clock(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + GOOD + "2999-01-01T00:00:00,SPY,1,1,P,\n")
    items = list(read_ticks(path, NY))
    assert isinstance(items[0], Tick)
    assert only_error(items).reason == Reason.FUTURE_TIME


# --- bad rows --------------------------------------------------------------------------------------------

BAD_ROWS = [
    # (data row, reason, column, value)
    ("2013-10-07T09:30:00,SPY,abc,100,P,", RowReason.BAD_NUMBER, "price", "abc"),
    ("2013-10-07T09:30:00,SPY,nan,100,P,", Reason.BAD_PRICE, "price", "nan"),
    ("2013-10-07T09:30:00,SPY,inf,100,P,", Reason.BAD_PRICE, "price", "inf"),
    ("2013-10-07T09:30:00,SPY,0,100,P,", Reason.BAD_PRICE, "price", "0"),
    ("2013-10-07T09:30:00,SPY,-1.5,100,P,", Reason.BAD_PRICE, "price", "-1.5"),
    ("2013-10-07T09:30:00,SPY,167.41,-5,P,", Reason.BAD_SIZE, "size", "-5"),
    ("2013-10-07T09:30:00,SPY,167.41,1e400,P,", Reason.BAD_SIZE, "size", "1e400"),
    ("2013-10-07T09:30:00,SPY,167.41,ten,P,", RowReason.BAD_NUMBER, "size", "ten"),
    ("2013-10-07T09:30:00,SPY,,100,P,", RowReason.MISSING_VALUE, "price", ""),
    ("2013-10-07T09:30:00,SPY,167.41, ,P,", RowReason.MISSING_VALUE, "size", " "),
    ("2013-10-07T09:30:00,,167.41,100,P,", RowReason.MISSING_VALUE, "symbol", ""),
    (",SPY,167.41,100,P,", RowReason.MISSING_VALUE, "ts_et", ""),
    ("2013-10-07T09:30:00,SPY", RowReason.MISSING_COLUMN, "price", None),
    ("2013-10-07T09:30:00,SPY,167.41,100", RowReason.MISSING_COLUMN, "exchange", None),
    ("2013-13-07T09:30:00,SPY,167.41,100,P,", RowReason.BAD_TIME, "ts_et", "2013-13-07T09:30:00"),
    ("yesterday,SPY,167.41,100,P,", RowReason.BAD_TIME, "ts_et", "yesterday"),
    ("2013-10-07T09:30:00,S P Y,167.41,100,P,", Reason.BAD_SYMBOL, "symbol", "S P Y"),
    ("2013-10-07T09:30:00,SPY$,167.41,100,P,", Reason.BAD_SYMBOL, "symbol", "SPY$"),
    ("2034-01-01T00:00:00,SPY,167.41,100,P,", Reason.FUTURE_TIME, "ts_et", "2034-01-01T00:00:00"),
    ("1985-01-01T00:00:00,SPY,167.41,100,P,", Reason.ANCIENT_TIME, "ts_et", "1985-01-01T00:00:00"),
]


@pytest.mark.parametrize(("row", "reason", "column", "value"), BAD_ROWS)
def test_each_bad_row_becomes_one_row_error_and_neighbours_survive(
    tmp_path: Path, row: str, reason: Reason | RowReason, column: str, value: str | None
) -> None:
    items = read_all(write(tmp_path, HEADER + GOOD + row + "\n" + GOOD))
    assert len(items) == 3
    assert isinstance(items[0], Tick) and isinstance(items[2], Tick)
    error = items[1]
    assert isinstance(error, RowError)
    assert (error.path, error.line, error.column, error.value, error.reason) == (
        str(tmp_path / "ticks.csv"),
        3,
        column,
        value,
        reason,
    )
    assert error.message


def test_an_oversized_field_is_one_bad_csv_row_not_a_file_error(tmp_path: Path) -> None:
    huge = "x" * (csv.field_size_limit() + 10)
    items = read_all(write(tmp_path, HEADER + GOOD + f"2013-10-07T09:30:00,SPY,1,1,P,{huge}\n" + GOOD))
    assert [type(item).__name__ for item in items] == ["Tick", "RowError", "Tick"]
    error = only_error(items)
    assert (error.reason, error.line) == (RowReason.BAD_CSV, 3)


# --- file formats ----------------------------------------------------------------------------------------


def test_gzip_is_detected_by_content_not_by_name(tmp_path: Path) -> None:
    zipped = tmp_path / "ticks.data"
    zipped.write_bytes(gzip.compress((HEADER + GOOD).encode()))
    fake = write(tmp_path, HEADER + GOOD, name="plain.csv.gz")
    expected = [Tick("SPY", 167.41, 100.0, OPEN_2013_10_07_UTC_MS, "P", "20002000")]
    assert read_all(zipped) == expected
    assert read_all(fake) == expected


def test_constant_symbol_replaces_the_symbol_column(tmp_path: Path) -> None:
    path = write(tmp_path, "time,last,volume\n2013-10-07T13:30:00Z,167.41,100\n")
    mapping = ColumnMapping(time="time", price="last", size="volume", constant_symbol=" spy ")
    assert read_all(path, mapping) == [Tick("SPY", 167.41, 100.0, OPEN_2013_10_07_UTC_MS)]


@pytest.mark.parametrize(
    ("time_format", "cell", "expected_ms"),
    [
        ("epoch_ms", "1381152600123", OPEN_2013_10_07_UTC_MS + 123),
        ("epoch_ms", "1381152600123.9", OPEN_2013_10_07_UTC_MS + 123),
        ("epoch_s", "1381152600", OPEN_2013_10_07_UTC_MS),
        ("epoch_s", "1381152600.123", OPEN_2013_10_07_UTC_MS + 123),
        ("epoch_s", "1.3811526001e9", OPEN_2013_10_07_UTC_MS + 100),
        ("epoch_us", "1381152600123456", OPEN_2013_10_07_UTC_MS + 123),
        ("epoch_us", " 1381152600123999 ", OPEN_2013_10_07_UTC_MS + 123),
    ],
)
def test_epoch_formats_are_exact_and_floor_sub_millisecond_parts(
    tmp_path: Path, time_format: str, cell: str, expected_ms: int
) -> None:
    path = write(tmp_path, f"t,symbol,price\n{cell},SPY,1\n")
    # The zone must not matter: epoch numbers are absolute.
    mapping = ColumnMapping(time="t", size=None, time_format=time_format, timezone="Asia/Tokyo")
    assert read_all(path, mapping) == [Tick("SPY", 1.0, 0.0, expected_ms)]


@pytest.mark.parametrize("cell", ["abc", "nan", "inf", "1e999999999", "2013-10-07T13:30:00", "0x10"])
def test_bad_epoch_values_are_bad_time(tmp_path: Path, cell: str) -> None:
    path = write(tmp_path, f"t,symbol,price\n{cell},SPY,1\n")
    error = only_error(read_all(path, ColumnMapping(time="t", size=None, time_format="epoch_s")))
    assert (error.reason, error.column, error.value, error.line) == (RowReason.BAD_TIME, "t", cell, 2)


def test_strptime_pattern_uses_the_mapping_zone_unless_the_value_has_an_offset(tmp_path: Path) -> None:
    path = write(tmp_path, "when,symbol,price\n07/10/2013 09:30:00,SPY,1\n07/10/2013 9h30,SPY,1\n")
    mapping = ColumnMapping(time="when", size=None, time_format="%d/%m/%Y %H:%M:%S", timezone="America/New_York")
    tick, error = read_all(path, mapping)
    assert tick == Tick("SPY", 1.0, 0.0, OPEN_2013_10_07_UTC_MS)
    assert isinstance(error, RowError)
    assert (error.reason, error.value) == (RowReason.BAD_TIME, "07/10/2013 9h30")
    assert "'%d/%m/%Y %H:%M:%S'" in error.message

    aware = write(tmp_path, "when,symbol,price\n2013-10-07 15:30:00 +0200,SPY,1\n", name="aware.csv")
    mapping = ColumnMapping(time="when", size=None, time_format="%Y-%m-%d %H:%M:%S %z", timezone="Asia/Tokyo")
    assert read_all(aware, mapping) == [Tick("SPY", 1.0, 0.0, OPEN_2013_10_07_UTC_MS)]


# --- time zones ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "zone", "expected_ms"),
    [
        ("2013-10-07T09:30:00", "America/New_York", OPEN_2013_10_07_UTC_MS),  # EDT: UTC-4
        ("2013-10-07T13:30:00", "UTC", OPEN_2013_10_07_UTC_MS),
        ("2013-10-07 22:30:00", "Asia/Tokyo", OPEN_2013_10_07_UTC_MS),  # JST: UTC+9, space separator
        ("2013-10-07T13:30:00Z", "America/New_York", OPEN_2013_10_07_UTC_MS),  # own offset wins
        ("2013-10-07T11:30:00-02:00", "Asia/Tokyo", OPEN_2013_10_07_UTC_MS),
        ("2014-01-06T09:30:00", "America/New_York", 1_389_018_600_000),  # EST in winter: UTC-5
        ("2013-11-03T01:30:00", "America/New_York", 1_383_456_600_000),  # ambiguous: first (EDT) reading
        ("2013-10-07T09:30:00.123456", "America/New_York", OPEN_2013_10_07_UTC_MS + 123),
    ],
)
def test_iso_times_convert_to_utc_epoch_ms(tmp_path: Path, cell: str, zone: str, expected_ms: int) -> None:
    path = write(tmp_path, f"ts_et,symbol,price\n{cell},SPY,1\n")
    (tick,) = read_all(path, ColumnMapping(size=None, timezone=zone))
    assert isinstance(tick, Tick)
    assert tick.event_time == expected_ms


# --- file-level errors -----------------------------------------------------------------------------------


def test_missing_file_is_a_replay_error_raised_at_call_time(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match=r"nope\.csv"):
        read_ticks(tmp_path / "nope.csv", NY)
    with pytest.raises(ReplayError, match="cannot read"):
        read_ticks(tmp_path, NY)


def test_header_lacking_a_mapped_column_names_file_missing_and_present_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_et,symbol,px\n2013-10-07T09:30:00,SPY,1\n")
    with pytest.raises(ReplayError) as info:
        read_ticks(path, ColumnMapping(venue="exchange"))
    message = str(info.value)
    assert str(path) in message
    assert "'price', 'size', 'exchange'" in message
    assert "columns present: 'ts_et', 'symbol', 'px'" in message


def test_empty_file_duplicate_columns_and_binary_junk_are_replay_errors(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="empty"):
        read_ticks(write(tmp_path, "\n\n", name="empty.csv"), NY)
    with pytest.raises(ReplayError, match="'price' more than once"):
        read_ticks(write(tmp_path, "ts_et,symbol,price,price\n", name="dup.csv"), ColumnMapping(size=None))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ReplayError, match="does not look like a CSV text file"):
        read_ticks(junk, NY)


def test_truncated_gzip_raises_replay_error_after_the_rows_it_could_read(tmp_path: Path) -> None:
    rows = (f"2013-10-07T09:30:{i % 60:02d}.{i % 1000:03d},SPY,{100 + i / 100:.2f},{i},P,\n" for i in range(20_000))
    body = (HEADER + "".join(rows)).encode()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(body)[:-5_000])
    items = read_ticks(path, NY, now_ms=NOW_MS)
    with pytest.raises(ReplayError, match="read failed after line"):
        for _ in items:
            pass


# --- properties ------------------------------------------------------------------------------------------

CELL = st.text(max_size=12) | st.sampled_from(
    ["", " ", "nan", "-1", "1e999", "1e999999999", "SPY", "2013-10-07T09:30:00", "1381152600", "07/10/2013"]
)
MAPPINGS = [
    NY,
    ColumnMapping(time_format="epoch_s", size=None, condition="condition"),
    ColumnMapping(time_format="epoch_us", symbol=None, constant_symbol="SPY"),
    ColumnMapping(time_format="%d/%m/%Y", timezone="Asia/Kolkata"),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELL, min_size=0, max_size=7), max_size=8), mapping=st.sampled_from(MAPPINGS))
def test_arbitrary_cells_only_ever_yield_ticks_or_row_errors(
    tmp_path: Path, rows: list[list[str]], mapping: ColumnMapping
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["ts_et", "symbol", "price", "size", "exchange", "condition"])
    writer.writerows(rows)
    with tempfile.NamedTemporaryFile("w", suffix=".csv", dir=tmp_path, delete=False, encoding="utf-8") as f:
        f.write(buffer.getvalue())
    items = read_all(Path(f.name), mapping)
    assert all(isinstance(item, Tick | RowError) for item in items)
    # csv.writer renders [] as a blank line, which the reader skips; every other row answers exactly once.
    assert len(items) == sum(1 for row in rows if row)
    lines = [item.line for item in items if isinstance(item, RowError)]
    assert lines == sorted(set(lines)) and all(line >= 2 for line in lines)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300), zipped=st.booleans())
def test_arbitrary_bytes_yield_items_or_raise_replay_error_only(tmp_path: Path, content: bytes, zipped: bool) -> None:
    with tempfile.NamedTemporaryFile("wb", dir=tmp_path, delete=False) as f:
        f.write(gzip.compress(HEADER.encode() + content) if zipped else HEADER.encode() + content)
    try:
        items = read_all(Path(f.name))
    except ReplayError:
        return
    assert all(isinstance(item, Tick | RowError) for item in items)


# --- the real sample -------------------------------------------------------------------------------------


def test_first_50k_rows_of_the_real_lean_sample_are_all_valid_ticks() -> None:
    real_file = require_trades_file()
    items = list(itertools.islice(read_ticks(real_file, NY), 50_000))
    errors = Counter(item.reason for item in items if isinstance(item, RowError))
    assert len(items) == 50_000
    assert errors == Counter(), [str(item) for item in items if isinstance(item, RowError)][:5]
    first = items[0]
    # 2013-10-07T04:00:00.464 New York (EDT) is 08:00:00.464 UTC.
    assert first == Tick("SPY", 167.41, 100.0, 1_381_132_800_464, "P", "20002000")
    ticks = [item for item in items if isinstance(item, Tick)]
    assert {tick.symbol for tick in ticks} <= {"SPY", "AIG", "BAC", "IBM"}
    assert all(tick.venue and tick.condition for tick in ticks)


def test_an_unclosed_quote_says_which_lines_it_swallowed(tmp_path: Path) -> None:
    # The CSV reader reads on to the closing quote, here the end of the file: the row after it vanished unnamed.
    text = HEADER + '2013-10-07T09:30:00,"SPY,167.41,100,P,0\n' + GOOD + GOOD
    error = only_error(read_all(write(tmp_path, text)))
    assert (error.line, error.reason) == (2, RowReason.MISSING_COLUMN)
    assert "lines 2-4 were read as one row (an unclosed quote?)" in error.message, error.message


@pytest.mark.parametrize(
    ("cell", "given", "meant"), [("1381152600000", "epoch_s", "epoch_ms"), ("1381152600", "epoch_ms", "epoch_s")]
)
def test_an_epoch_time_in_the_wrong_unit_names_the_unit_that_fits(
    tmp_path: Path, cell: str, given: str, meant: str
) -> None:
    path = write(tmp_path, f"ts_et,symbol,price,size\n{cell},SPY,1,1\n")
    error = only_error(read_all(path, ColumnMapping(time_format=given)))
    assert error.reason in (Reason.FUTURE_TIME, Reason.ANCIENT_TIME)
    assert f"as {meant} it is 2013-10-07T13:30:00Z: --time-format {meant}?" in error.message, error.message


@pytest.mark.parametrize("cell", ["\u0131bm", "spy\ufb01", "\u017fpy"])  # dotless i, ligature fi, long s
def test_a_non_ascii_symbol_is_a_bad_symbol_not_the_ascii_one_upper_casing_makes_of_it(
    tmp_path: Path, cell: str
) -> None:
    # str.upper() maps dotless i to I, the ligature fi to FI and long s to S: the symbol contract is ASCII, and
    # a file's dotless-i "ibm" must be reported, not sent as IBM's trade.
    (item,) = read_all(write(tmp_path, HEADER + GOOD.replace("SPY", cell)))
    assert isinstance(item, RowError), f"{cell!r} was read as {item}"
    assert (item.column, item.value, item.reason) == ("symbol", cell, Reason.BAD_SYMBOL)


def test_a_non_ascii_constant_symbol_is_refused_not_upper_cased_into_another() -> None:
    with pytest.raises(ValueError, match="constant_symbol '\u0131bm' does not match"):
        ColumnMapping(constant_symbol="\u0131bm")


def test_a_row_with_more_cells_than_the_header_is_a_bad_row_not_a_shifted_tick(tmp_path: Path) -> None:
    # An unquoted thousands separator splits the price in two: read by position, "1" became the price and
    # "234.50" the size, and a wrong trade went out without a word.
    # Trailing empty cells (a trailing comma) shift nothing and stay accepted.
    rows = ["2013-10-07T09:30:00,SPY,1,234.50,100", "2013-10-07T09:30:00,SPY,1,2", "2013-10-07T09:30:00,SPY,1,2,,"]
    path = write(tmp_path, "ts_et,symbol,price,size\n" + "\n".join(rows) + "\n")
    items = read_all(path, ColumnMapping(timezone="America/New_York"))
    assert isinstance(items[1], Tick) and isinstance(items[2], Tick), f"well-formed rows were refused: {items}"
    error = items[0]
    assert isinstance(error, RowError), f"a 5-cell row under a 4-column header was read as {error}"
    assert (error.line, error.column, error.reason) == (2, None, RowReason.BAD_CSV)
    assert str(error) == f"{path}:2: row has 5 cells, the header has 4 (an unquoted comma?)"
