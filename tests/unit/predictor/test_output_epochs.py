"""Per-epoch delivery accounting: an epoch is delivered once every report of it and earlier epochs came in, and a
refused output is charged to its source partition until that partition is forgotten (rewound)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tickcast.common.security import KafkaClientSettings
from tickcast.predictor.output import DeliveryFailed, OutputProducer

Report = Callable[[Any, Any], None]


class FakeMessage:
    def topic(self) -> str:
        return "predictions"


class HeldReports:
    """Stands in for librdkafka: keeps each send's delivery callback until the test answers it."""

    def __init__(self) -> None:
        self.pending: list[Report] = []
        self.answers: list[tuple[Report, Any]] = []

    def produce(self, *args: Any, on_delivery: Report, **kwargs: Any) -> None:
        self.pending.append(on_delivery)

    def answer(self, index: int, err: Any = None) -> None:
        self.answers.append((self.pending[index], err))

    def poll(self, timeout: float) -> int:
        served, self.answers = self.answers, []
        for report, err in served:
            report(err, FakeMessage())
        return len(served)

    def flush(self, timeout: float) -> int:
        return 0

    def __len__(self) -> int:
        return 0


def output_with_held_reports() -> tuple[OutputProducer, HeldReports]:
    output = OutputProducer(KafkaClientSettings(bootstrap_servers="127.0.0.1:1"), 0, log_level=0)
    real, held = output._producer, HeldReports()
    real.flush(0.0)
    output._producer = held  # type: ignore[assignment]
    return output, held


def delivered(output: OutputProducer, epoch: int, timeout_s: float = 0.05) -> None:
    asyncio.run(output.delivered(epoch, timeout_s))


def test_an_epoch_is_delivered_once_all_its_reports_came_in_whatever_later_epochs_do() -> None:
    output, held = output_with_held_reports()
    assert output.send("predictions", b"A", b"1", source=0)
    assert output.send("predictions", b"B", b"2", source=1)
    first = output.mark()
    assert output.send("predictions", b"A", b"3", source=0)  # the next epoch, never answered here

    held.answer(0)
    with pytest.raises(DeliveryFailed, match="1 messages still undelivered"):
        delivered(output, first)
    held.answer(1)
    delivered(output, first)


def test_a_refused_output_is_raised_for_its_source_partition_until_it_is_forgotten() -> None:
    output, held = output_with_held_reports()
    assert output.send("predictions", b"A", b"1", source=3)
    assert output.send("predictions", b"B", b"2", source=4)
    held.answer(0, err="Local: Message timed out")
    held.answer(1)
    epoch = output.mark()

    with pytest.raises(DeliveryFailed) as refused:
        delivered(output, epoch)
    assert refused.value.partitions == {3}
    with pytest.raises(DeliveryFailed):
        delivered(output, epoch)  # every wait raises it again

    output.forget([3])
    delivered(output, output.mark())


def test_a_refusal_of_a_send_older_than_the_rewind_is_moot() -> None:
    output, held = output_with_held_reports()
    assert output.send("predictions", b"A", b"1", source=3)
    output.forget([3])  # the partition is re-read from its checkpoint: that send's tick is read again
    held.answer(0, err="Local: Message timed out")

    delivered(output, output.mark())
