"""Lag arithmetic, owners and formatting, without Kafka."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from tests.unit.ops.not_http import ssh_like_port
from tickcast.common.security import KafkaClientSettings
from tickcast.ops import lag
from tickcast.ops.lag import (
    LagReader,
    LagReport,
    PartitionLag,
    build_report,
    fetch_stats,
    lag_table,
    owners_from_assignments,
    owners_from_stats,
    report_to_dict,
)

AT = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_lag_is_end_minus_committed_or_minus_the_log_start_without_a_commit() -> None:
    report = build_report("ticks", "g", {0: 40, 1: -1001, 3: 12}, {0: (0, 50), 1: (5, 9), 2: (0, 7), 3: (0, 1)}, {})
    assert [(p.partition, p.committed, p.lag) for p in report.partitions] == [
        (0, 40, 10),
        (1, None, 4),  # never committed: the workers start at the earliest offset, 5
        (2, None, 7),
        (3, 12, 0),  # Tansu with batching producers: end offset below the committed one; never negative
    ]
    assert (report.total_lag, report.total_position, report.total_end) == (21, 40 + 5 + 0 + 12, 67)


def test_a_commit_below_the_log_start_counts_from_the_log_start() -> None:
    # Apache Kafka deletes ticks after retention (7 days); a group idle longer has its committed offset below the
    # log start, and its consumers resume at the log start (auto.offset.reset=earliest). The embedded broker
    # never deletes, so only a real cluster shows it: the report must not count records that no longer exist.
    report = build_report("ticks", "g", {0: 100}, {0: (5_000, 5_010)}, {})
    assert (report.partitions[0].position, report.partitions[0].lag) == (5_000, 10)
    assert report.total_lag == 10


def test_owners_from_worker_stats_ignore_other_topics_partitions_and_show_overlaps() -> None:
    stats = [
        {"worker": "w-1", "assigned_partitions": [0, 1, 9]},
        {"worker": "w-2", "assigned_partitions": [1, 2]},
        {"worker": "w-3"},  # no partitions yet
    ]
    assert owners_from_stats(stats, topic_partitions=8) == {0: "w-1", 1: "w-1,w-2", 2: "w-2"}
    report = build_report(
        "ticks", "g", {0: 0, 1: 0, 2: 0, 3: 0}, {p: (0, 2) for p in range(4)}, owners_from_stats(stats)
    )
    assert not report.owners_known
    assert report.by_owner() == {"w-1": 2, "w-1,w-2": 2, "w-2": 2, "?": 2}


def test_owners_from_group_assignments_keep_only_the_topic() -> None:
    members = [("a@h1", [("ticks", 0), ("ticks", 2), ("predictions", 1)]), ("b@h2", [("ticks", 1)])]
    assert owners_from_assignments(members, "ticks") == {0: "a@h1", 2: "a@h1", 1: "b@h2"}


def test_json_form_is_serialisable_and_complete() -> None:
    report = build_report("ticks", "g", {0: 3}, {0: (0, 5), 1: (1, 2)}, {0: "w-1"}, AT)
    data = json.loads(json.dumps(report_to_dict(report)))
    assert data == {
        "topic": "ticks",
        "group": "g",
        "taken_at": "2024-01-02T03:04:05+00:00",
        "total_lag": 3,
        "total_committed": 3,
        "total_position": 4,  # partition 1 resumes at its log start, 1
        "total_end": 7,
        "partitions": [
            {"partition": 0, "committed": 3, "end": 5, "lag": 2, "owner": "w-1"},
            {"partition": 1, "committed": None, "end": 2, "lag": 1, "owner": None},
        ],
    }


def render(report: LagReport, width: int = 120) -> list[str]:
    """The table as `tickcast lag` prints it to a pipe: plain text, no colour."""
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(lag_table(report))
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def cells(lines: list[str]) -> list[list[str]]:
    """The rows of body and footer (the lines drawn with light verticals), cell by cell."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if line.startswith("│")]


def test_table_shows_partitions_owners_lags_and_totals() -> None:
    report = build_report("ticks", "g", {0: 1_000_000, 1: None}, {0: (0, 1_000_100), 1: (5, 6)}, {0: "w-1"}, AT)
    lines = render(report)
    assert lines[0].strip() == "lag of group g on ticks at 2024-01-02T03:04:05+00:00"
    assert [cell.strip() for cell in lines[2].split("┃")[1:-1]] == ["partition", "committed", "end", "lag", "owner"]
    assert cells(lines) == [
        ["0", "1000000", "1000100", "100", "w-1"],
        ["1", "-", "6", "1", "?"],  # never committed: position is the log start, 5
        ["total", "1000000", "1000106", "101", ""],  # committed: the column's sum; lag: from the positions
    ]
    assert lines[-1].strip() == "lag by owner: w-1=100 ?=1"


def test_the_committed_totals_add_up_the_committed_column() -> None:
    # Partition 1 has no commit ("-"): its log start, 5, is where the group resumes, not a committed offset.
    report = build_report("ticks", "g", {0: 40, 1: None}, {0: (0, 50), 1: (5, 9)}, {}, AT)
    footer, data = cells(render(report))[-1], report_to_dict(report)
    assert (footer[1], data["total_committed"]) == ("40", 40), "the table's and the JSON's committed totals"


def test_numbers_are_right_aligned_so_columns_line_up() -> None:
    report = build_report("ticks", "g", {0: 1_000_000, 1: 5}, {0: (0, 1_000_100), 1: (0, 6)}, {0: "w-1", 1: "w-2"}, AT)
    rows = [line.split("│")[1:-1] for line in render(report) if line.startswith("│")]
    for column in range(4):  # partition, committed, end, lag: short and long numbers end at the same place
        assert all(row[column].endswith(" ") and not row[column].endswith("  ") for row in rows), rows


def test_a_narrow_table_keeps_its_heading_on_one_line() -> None:
    report = build_report("ticks", "tickcast-predictor-with-a-long-name", {0: 1}, {0: (0, 2)}, {}, AT)
    assert render(report, width=200)[0].strip().endswith("at 2024-01-02T03:04:05+00:00")


def test_a_topic_without_partitions_has_no_owner_line() -> None:
    lines = render(build_report("ticks", "g", {}, {}, {}, AT))
    assert cells(lines) == [["total", "0", "0", "0", ""]]
    assert not any("lag by owner" in line for line in lines)


@given(
    st.dictionaries(
        st.integers(0, 63),
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.none() | st.integers(-1001, 2 * 10**6)),
        min_size=1,
    )
)
def test_totals_are_sums_of_non_negative_partition_lags(parts: dict[int, tuple[int, int, int | None]]) -> None:
    watermarks = {p: (min(a, b), max(a, b)) for p, (a, b, _) in parts.items()}
    committed = {p: c for p, (_, _, c) in parts.items()}
    report = build_report("t", "g", committed, watermarks, {})
    assert all(p.lag >= 0 for p in report.partitions)
    assert report.total_lag == sum(p.lag for p in report.partitions) == sum(report.by_owner().values())
    for p in report.partitions:
        low, high = watermarks[p.partition]
        c = committed[p.partition]
        expected_position = max(c, low) if c is not None and c >= 0 else low
        assert p == PartitionLag(p.partition, c if c is not None and c >= 0 else None, low, high)
        assert p.lag == max(0, high - expected_position)


def test_a_stats_url_that_does_not_speak_http_reads_as_no_answer() -> None:
    # A mistyped --stats-url (an SSH or TLS port) answers with something that is not an HTTP status line;
    # http.client raises BadStatusLine for it, which is not an OSError.
    with ssh_like_port() as port:
        assert fetch_stats(f"http://127.0.0.1:{port}/stats", timeout_s=5.0) is None, "not HTTP: no stats"


class BusyBroker:
    """One partition of a busy topic: after every read of an offset, the group commits what its worker had
    processed (everything up to the end) and the producer appends 5 records. Both admin client and consumer."""

    def __init__(self) -> None:
        self.committed, self.end = 90, 100

    def _moved_on(self) -> None:
        self.committed, self.end = self.end, self.end + 5

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions={0: None})})

    def get_watermark_offsets(self, tp: Any, timeout: float, cached: bool) -> tuple[int, int]:
        end = self.end
        self._moved_on()
        return 0, end

    def list_consumer_group_offsets(self, requests: list[Any], request_timeout: float) -> dict[str, Any]:
        (request,) = requests
        result = SimpleNamespace(
            topic_partitions=[SimpleNamespace(topic="ticks", partition=0, offset=self.committed, error=None)]
        )
        self._moved_on()
        return {request.group_id: SimpleNamespace(result=lambda: result)}

    def describe_consumer_groups(self, groups: list[str], request_timeout: float) -> Any:
        return {group: SimpleNamespace(result=lambda: SimpleNamespace(members=[])) for group in groups}


def test_a_commit_between_the_reads_makes_the_lag_read_high_never_low(monkeypatch: pytest.MonkeyPatch) -> None:
    # The group is never less than 5 records behind here. Reading the end before the committed offset, a commit
    # in between reads as 0 lag (100 - 100): the autoscaler sees an idle group. Committed first, it reads 15.
    broker = BusyBroker()
    monkeypatch.setattr(lag, "new_admin", lambda kafka: broker)
    monkeypatch.setattr(lag, "new_consumer", lambda kafka, group, **overrides: broker)
    report = LagReader(KafkaClientSettings(), "ticks", "g").read()
    assert report.total_lag >= 5, f"lag read low: {report.partitions}"
