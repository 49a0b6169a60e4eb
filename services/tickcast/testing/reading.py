"""Reading what a pipeline answered: until an expected count arrived, failing with what is missing."""

from __future__ import annotations

from collections.abc import Iterable

from tickcast.common.records import Prediction
from tickcast.subscriber.reader import PredictionReader, Received
from tickcast.testing.pipeline import Pipeline
from tickcast.testing.waiting import wait_for


def collect(
    reader: PredictionReader, expected: int, timeout_s: float, what: str, pipeline: Pipeline | None = None
) -> list[Received]:
    """Read until ``expected`` records arrived (a poll may bring a few more); fail naming how many did not."""
    got: list[Received] = []

    def enough() -> bool:
        got.extend(reader.poll(timeout_s=0.2))
        return len(got) >= expected

    def missing() -> str:
        return f"only {len(got)} of {expected} {what} arrived\n{pipeline.worker_logs() if pipeline else ''}"

    # The poll itself waits for records to arrive, so there is no pause between polls.
    wait_for(enough, timeout_s, f"{expected} {what}", diagnostics=missing, interval_s=0)
    return got


def predictions_of(received: Iterable[Received]) -> list[Prediction]:
    """The predictions among ``received``; AssertionError if any record on the topic was undecodable.

    >>> predictions_of([Received("predictions", 0, 0, error="bad magic byte")])
    Traceback (most recent call last):
    ...
    AssertionError: undecodable records on the predictions topic: ['bad magic byte']
    """
    records = list(received)
    errors = [r.error for r in records if r.error]
    if errors:
        raise AssertionError(f"undecodable records on the predictions topic: {errors[:3]}")
    return [r.prediction for r in records if r.prediction is not None]
