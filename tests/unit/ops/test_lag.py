"""Lag arithmetic, owners and formatting, without Kafka."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from tickcast.ops.lag import (
    PartitionLag,
    build_report,
    format_table,
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
    report = build_report("ticks", "g", {0: 3}, {0: (0, 5), 1: (0, 2)}, {0: "w-1"}, AT)
    data = json.loads(json.dumps(report_to_dict(report)))
    assert data == {
        "topic": "ticks",
        "group": "g",
        "taken_at": "2024-01-02T03:04:05+00:00",
        "total_lag": 4,
        "total_committed": 3,
        "total_end": 7,
        "partitions": [
            {"partition": 0, "committed": 3, "end": 5, "lag": 2, "owner": "w-1"},
            {"partition": 1, "committed": None, "end": 2, "lag": 2, "owner": None},
        ],
    }


def test_table_columns_line_up_for_wide_numbers() -> None:
    report = build_report("ticks", "g", {0: 1_000_000, 1: 5}, {0: (0, 1_000_100), 1: (0, 6)}, {0: "w-1", 1: "w-2"}, AT)
    lines = format_table(report).splitlines()
    assert lines[0] == "lag of group g on ticks at 2024-01-02T03:04:05+00:00"
    lag_ends = lines[1].index("lag") + len("lag")
    for row in lines[2:5]:  # two partitions and the total: numbers end where the header ends
        assert row[lag_ends - 1].isdigit() and row[lag_ends : lag_ends + 1] in ("", " "), row
    assert [line.split()[2] for line in lines[2:5]] == ["1000100", "6", "1000106"]
    assert lines[-1] == "lag by owner: w-1=100 w-2=1"


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
        expected_position = c if c is not None and c >= 0 else low
        assert p == PartitionLag(p.partition, c if c is not None and c >= 0 else None, low, high)
        assert p.lag == max(0, high - expected_position)
