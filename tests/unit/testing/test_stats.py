"""Waiting for a split of partitions: what counts as owned exactly once, and how a wait fails."""

from __future__ import annotations

import pytest

from tickcast.testing.stats import Assignment, split_once, wait_for_split


@pytest.mark.parametrize(
    ("assignment", "split"),
    [
        ({"w-1": [0, 1, 2, 3]}, True),
        ({"w-1": [3, 1], "w-2": [0, 2]}, True),
        ({"w-1": [0, 1], "w-2": [1, 2, 3]}, False),  # partition 1 twice: a rebalance in progress
        ({"w-1": [0, 1, 2]}, False),  # partition 3 nobody's
        ({"w-1": [0, 1, 2, 3], "w-2": []}, False),  # w-2 has not finished joining
        ({"w-1": [0, 1, 2, 3, 4]}, False),  # a partition the topic does not have
    ],
)
def test_split_once(assignment: Assignment, split: bool) -> None:
    assert split_once(assignment, 4) is split


def test_wait_for_split_returns_the_first_assignment_that_splits() -> None:
    reads: list[Assignment | None] = [None, {"w-1": [0, 1], "w-2": [1]}, {"w-1": [0], "w-2": [1]}]
    assert wait_for_split(lambda: reads.pop(0), 2, "two workers", 5.0) == {"w-1": [0], "w-2": [1]}


def test_a_timeout_names_what_did_not_happen_the_last_assignment_and_the_diagnostics() -> None:
    with pytest.raises(TimeoutError) as failure:
        wait_for_split(lambda: {"w-1": [0]}, 2, "one worker", 0.05, diagnostics=lambda: "--- w-1.log\nrebalancing")
    assert str(failure.value).splitlines() == [
        "timed out after 0.05s waiting for partitions 0..1 to be split among one worker",
        "last seen: {'w-1': [0]}",
        "--- w-1.log",
        "rebalancing",
    ]


def test_a_failing_check_ends_the_wait_at_once() -> None:
    def dead() -> None:
        raise AssertionError("worker w-1 exited with code 1")

    with pytest.raises(AssertionError, match="exited with code 1"):
        wait_for_split(lambda: None, 2, "one worker", 60.0, check=dead)
