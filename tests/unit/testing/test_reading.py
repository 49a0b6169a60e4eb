"""Reading until an expected count arrived: a shortfall names how many records did not come."""

from __future__ import annotations

from typing import cast

import pytest

from tickcast.subscriber.reader import PredictionReader, Received
from tickcast.testing.reading import collect


class TwoRecordsThenNothing:
    def __init__(self) -> None:
        self.batches = [[Received("p", 0, 0)], [Received("p", 0, 1)]]

    def poll(self, timeout_s: float = 0.2) -> list[Received]:
        return self.batches.pop(0) if self.batches else []


def test_collect_returns_once_enough_arrived() -> None:
    reader = cast(PredictionReader, TwoRecordsThenNothing())
    assert [r.offset for r in collect(reader, 2, 5.0, "predictions")] == [0, 1]


def test_collect_fails_naming_the_shortfall() -> None:
    reader = cast(PredictionReader, TwoRecordsThenNothing())
    with pytest.raises(TimeoutError, match="only 2 of 3 predictions arrived"):
        collect(reader, 3, 0.5, "predictions")
