"""No record can stop a worker: every outcome is published, or falls back to something smaller that is."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from tickcast.common.errors import Reason
from tickcast.common.records import Lineage
from tickcast.common.security import KafkaClientSettings
from tickcast.predictor.metrics import TickCounters
from tickcast.predictor.output import OutputProducer, ProduceRefused
from tickcast.predictor.publishing import (
    FRAMING_BYTES,
    MAX_DEAD_LETTER_KEY_BYTES,
    OutcomePublisher,
    PartitionHalted,
    fit_dead_letter,
)
from tickcast.predictor.runtime import DeadLettered, Predicted, dead_letter_headers

LINEAGE = Lineage("ticks", 2, 41, 1_700_000_000_000)
#: The record from issue 12: a 1 MB value that librdkafka (message.max.bytes 1,000,000) cannot dead-letter as is.
POISON = b"\x00" + b"\x00" * 999_800


def oversized_letter(key: bytes = b"SPY", value: bytes = POISON) -> DeadLettered:
    headers = dead_letter_headers(Reason.OVERSIZED, "record is 999801 bytes", LINEAGE, "w", 0)
    return DeadLettered(key, value, headers)


class RefusingOutput:
    """Answers its sends by ``script``: "refuse" (at produce() time, as librdkafka does for a message it cannot
    take), "full" (queue full), and once the script is done, queues."""

    max_message_bytes = 1_000_000

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.sent: list[tuple[str, bytes | None, bytes | None, dict[str, bytes], int | None]] = []

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None, source: int | None = None
    ) -> bool:
        action = self.script.pop(0) if self.script else "queue"
        if action == "full":
            return False
        if action == "refuse":
            raise ProduceRefused(f"{topic}: KafkaError{{code=MSG_SIZE_TOO_LARGE}}")
        self.sent.append((topic, key, value, dict(headers or []), source))
        return True


def publisher(output: Any) -> OutcomePublisher:
    return OutcomePublisher(output, "predictions", "dlq", "w", TickCounters())


def test_the_issue_poison_record_fits_a_real_producer_after_fitting() -> None:
    output = OutputProducer(KafkaClientSettings(bootstrap_servers="127.0.0.1:1"), 0, log_level=0)
    try:
        letter = oversized_letter()
        with pytest.raises(ProduceRefused, match="MSG_SIZE_TOO_LARGE"):  # what used to kill the worker
            output.send("dlq", letter.key, letter.value, letter.headers)
        assert publisher(output).publish(letter, b"SPY", POISON, LINEAGE)
    finally:
        output.close(0.0)


def test_a_dead_letter_too_large_keeps_a_prefix_its_size_and_its_lineage() -> None:
    fitted = fit_dead_letter(oversized_letter(), 1_000_000)
    headers = dict(fitted.headers)
    assert fitted.key == b"SPY" and fitted.value is not None and POISON.startswith(fitted.value)
    size = len(fitted.key) + len(fitted.value) + sum(len(k) + len(v) for k, v in fitted.headers)
    assert size == 1_000_000 - FRAMING_BYTES
    assert headers["tickcast.original.value_bytes"] == str(len(POISON)).encode()
    assert headers["tickcast.source.offset"] == b"41" and headers["tickcast.reason"] == b"oversized"


def test_an_oversized_key_is_cut_too() -> None:
    fitted = fit_dead_letter(oversized_letter(key=b"K" * 600_000, value=b"v" * 600_000), 1_000_000)
    assert fitted.key == b"K" * MAX_DEAD_LETTER_KEY_BYTES
    assert dict(fitted.headers)["tickcast.original.key_bytes"] == b"600000"
    assert fitted.value == b"v" * 600_000  # the value fits once the key is cut


def test_a_prediction_that_cannot_be_produced_becomes_a_dead_letter_of_its_tick() -> None:
    output = RefusingOutput("refuse")
    p = publisher(output)
    p.counters.predictions_out = 1
    assert p.publish(Predicted("SPY", b"SPY", b"prediction"), b"SPY", b"tick", LINEAGE)
    [(topic, key, value, headers, source)] = output.sent
    assert (topic, key, value, source) == ("dlq", b"SPY", b"tick", 2)
    assert headers["tickcast.reason"] == b"output_refused" and b"MSG_SIZE_TOO_LARGE" in headers["tickcast.message"]
    assert p.counters.predictions_out == 0 and p.counters.dead_letters == {"output_refused": 1}


def test_a_dead_letter_that_cannot_be_produced_is_sent_without_payload() -> None:
    output = RefusingOutput("refuse")
    assert publisher(output).publish(oversized_letter(), b"SPY", POISON, LINEAGE)
    [(topic, key, value, headers, _)] = output.sent
    assert (topic, key, value) == ("dlq", None, None)
    assert headers["tickcast.reason"] == b"oversized" and headers["tickcast.source.offset"] == b"41"
    assert b"MSG_SIZE_TOO_LARGE" in headers["tickcast.payload_dropped"]


def test_when_nothing_at_all_can_be_produced_the_partition_halts_with_a_clear_error() -> None:
    with pytest.raises(PartitionHalted, match=r"partition 2 stopped at offset 41.*nothing from this offset on"):
        publisher(RefusingOutput("refuse", "refuse", "refuse")).publish(oversized_letter(), b"SPY", POISON, LINEAGE)


def test_a_full_queue_is_reported_not_waited_for() -> None:
    output = RefusingOutput("full")
    p = publisher(output)
    assert not p.publish(Predicted("SPY", b"SPY", b"prediction"), b"SPY", b"tick", LINEAGE)
    assert p.publish(Predicted("SPY", b"SPY", b"prediction"), b"SPY", b"tick", LINEAGE)
    assert [sent[0] for sent in output.sent] == ["predictions"]


def test_waiting_for_room_yields_to_the_event_loop() -> None:
    async def scenario() -> int:
        # Nothing listens on port 1, so the queue only drains when librdkafka times the messages out.
        output = OutputProducer(
            KafkaClientSettings(bootstrap_servers="127.0.0.1:1"),
            0,
            **{"queue.buffering.max.messages": 2, "message.timeout.ms": 300, "log_level": 0},
        )
        ticks = 0

        async def other_work() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        other = asyncio.create_task(other_work())
        try:
            assert output.send("t", b"k", b"1") and output.send("t", b"k", b"2")
            assert not output.send("t", b"k", b"3")
            # put() sends as soon as there is room, waiting (and yielding) as often as it takes.
            await asyncio.wait_for(output.put("t", b"k", b"3"), 5.0)
        finally:
            other.cancel()
            output.close(0.0)
        return ticks

    assert asyncio.run(scenario()) >= 10, "the event loop must keep running while the output queue is full"


def test_a_refused_prediction_is_counted_as_a_dead_letter_once_even_if_the_queue_was_full() -> None:
    # Refused, then its dead letter finds the queue full; published again: refused, and the dead letter is queued.
    output = RefusingOutput("refuse", "full", "refuse")
    p = publisher(output)
    p.counters.predictions_out = 1
    prediction = Predicted("SPY", b"SPY", b"prediction")
    assert not p.publish(prediction, b"SPY", b"tick", LINEAGE)
    assert p.counters.predictions_out == 1 and not p.counters.dead_letters
    assert p.publish(prediction, b"SPY", b"tick", LINEAGE)
    assert p.counters.predictions_out == 0 and p.counters.dead_letters == {"output_refused": 1}
    assert [sent[0] for sent in output.sent] == ["dlq"]


def test_a_dead_letters_model_events_go_first_under_its_key_and_once_after_a_full_queue() -> None:
    output = RefusingOutput("queue", "full")
    letter = replace(oversized_letter(value=b"tick"), model_events=(b"demotion", b"drift"))
    sender = publisher(output)
    assert not sender.publish(letter, b"SPY", b"tick", LINEAGE)  # the queue filled after the first event
    assert sender.publish(letter, b"SPY", b"tick", LINEAGE)
    sent = [(topic, key, value) for topic, key, value, _, _ in output.sent]
    assert sent == [("model-events", b"SPY", b"demotion"), ("model-events", b"SPY", b"drift"), ("dlq", b"SPY", b"tick")]
