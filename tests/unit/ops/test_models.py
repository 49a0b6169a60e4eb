"""Reading the model-events topic back: a record that is not a model event must not hide all the others."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.model_events import MODEL_EVENT_SCHEMA_FILE, ModelEvent
from tickcast.common.settings import CommonSettings
from tickcast.ops import models


@dataclass
class FakeMessage:
    """What read_model_events reads of a confluent_kafka Message."""

    _value: bytes | None
    _partition: int
    _offset: int

    def value(self) -> bytes | None:
        return self._value

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


def test_a_record_that_does_not_decode_is_skipped_and_the_events_around_it_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = AvroCodec(open_schema_store(None), "model-events-value", load_schema(MODEL_EVENT_SCHEMA_FILE))
    first = ModelEvent("PROMOTION", "SPY", "linear", "pa", "ticks", 0, 41, 1_000, 2_000, "w1", samples=300)
    last = ModelEvent("DRIFT", "SPY", "pa", "pa~fresh", "ticks", 0, 42, 1_001, 2_001, "w1")
    # Another writer on the topic (a test producer, a tool writing JSON): not the Confluent wire format.
    stray = b'{"kind": "PROMOTION"}'
    messages = [
        FakeMessage(codec.encode(first.to_avro()), 0, 0),
        FakeMessage(stray, 0, 1),
        FakeMessage(codec.encode(last.to_avro()), 0, 2),
    ]
    monkeypatch.setattr(models, "read_whole_topic", lambda *args, **kwargs: messages)
    events = models.read_model_events(CommonSettings(bootstrap_servers="k:9092"))
    assert events == [first, last], "one stray record must not stop `tickcast models` or hide the other events"
