"""Poison pills: no record, however large, stops a worker; each one ends up in the dead-letter topic."""

from __future__ import annotations

import pytest

from tickcast.common.records import Tick
from tickcast.common.settings import CommonSettings
from tickcast.ops.dlq import read_dead_letters
from tickcast.testing.pipeline import Pipeline, wait_for_assignment
from tickcast.testing.reading import collect, predictions_of
from tickcast.testing.stats import worker_stats

pytestmark = pytest.mark.integration

NOW_MS = 1_700_000_000_000

#: The tick from the issue: a ~1 MB value, just under librdkafka's default message.max.bytes of 1,000,000.
POISON = b"\x00" + b"\x00" * 999_800


def test_a_one_megabyte_record_is_dead_lettered_and_the_ticks_after_it_are_predicted(pipeline: Pipeline) -> None:
    worker = pipeline.start_workers(1)[0]
    wait_for_assignment(pipeline, [worker])
    # The test's producer must let the record through; the worker's dead letter of it is what used to fail.
    publisher = pipeline.publisher(**{"message.max.bytes": 2_000_000})
    publisher.publish_raw(b"SPY", POISON)
    after = [Tick("SPY", 400.0 + i * 0.01, 1.0, NOW_MS + i) for i in range(20)]
    for tick in after:
        publisher.publish(tick)
    assert publisher.close() == 0

    reader = pipeline.reader(dead_letters=True)
    received = collect(reader, 1 + len(after), 90, "the dead letter and the predictions after it", pipeline)
    reader.close()
    pipeline.check_workers_alive()
    predictions = predictions_of(r for r in received if r.dead_letter is None)
    assert [p.last_price for p in predictions] == [t.price for t in after]
    letters = [r.dead_letter for r in received if r.dead_letter is not None]
    assert len(letters) == 1 and letters[0]["tickcast.reason"] == "oversized"

    stored = read_dead_letters(CommonSettings(**pipeline.settings_kwargs()))
    assert len(stored) == 1
    letter = stored[0]
    assert letter.key == b"SPY"
    # What fits is kept, from the start; the headers say how large the original was and where it came from.
    assert letter.value and POISON.startswith(letter.value) and len(letter.value) < len(POISON)
    assert letter.headers["original.value_bytes"] == str(len(POISON))
    assert letter.headers["source.topic"] == pipeline.ticks_topic
    assert letter.headers["source.offset"] == "0"
    stats = worker_stats(worker)
    assert stats is not None and stats["dead_letters"] == {"oversized": 1}
