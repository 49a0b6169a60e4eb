"""The intake: records decoded on the event loop a bounded time at a time, in order, with ends after their records."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError

from tests.unit.gateway.fakes import prediction
from tickcast.gateway.feed import PredictionFeed
from tickcast.gateway.intake import MIN_SLICE, Intake
from tickcast.gateway.settings import GatewaySettings


@dataclass
class Raw:
    """A confluent-kafka message as the intake reads it: a prediction (as JSON here) or an end of partition."""

    offset_: int
    end: bool = False
    topic_: str = "predictions"

    def error(self) -> KafkaError | None:
        return KafkaError(KafkaError._PARTITION_EOF) if self.end else None

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self.offset_

    def value(self) -> bytes:
        return json.dumps(prediction(f"S{self.offset_}", self.offset_).to_avro()).encode()


class TickingClock:
    """Each reading is 1 ms after the one before: a slice of 2 ms has room for about two decodes."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def decoded(feed: PredictionFeed) -> list[int]:
    return [item.offset for item in feed.ring(0).after(-1)]


async def turns_until_empty(intake: Intake) -> int:
    turns = 0
    while intake.pending:
        await asyncio.sleep(0)  # one loop turn: the intake decodes one slice in it
        turns += 1
    return turns


def make_intake(**options: Any) -> tuple[PredictionFeed, Intake]:
    feed = PredictionFeed(GatewaySettings(partitions=1))
    return feed, Intake(feed, json.loads, "dlq", slice_s=0.002, clock=TickingClock(), **options)


def test_a_long_backlog_is_decoded_over_many_loop_turns_and_in_order() -> None:
    async def scenario() -> tuple[list[int], int, list[int]]:
        feed, intake = make_intake()
        intake.arrived(0.0, [Raw(offset) for offset in range(200)])
        await asyncio.sleep(0)
        after_one_turn = decoded(feed)
        turns = await turns_until_empty(intake)
        return after_one_turn, turns, decoded(feed)

    after_one_turn, turns, everything = asyncio.run(scenario())
    # The clock ticks 1 ms per reading, so a 2 ms slice is over a record or two after the floor of MIN_SLICE.
    assert MIN_SLICE <= len(after_one_turn) <= MIN_SLICE + 2, f"one loop turn decoded {len(after_one_turn)} records"
    assert turns >= 200 // MIN_SLICE - 1
    assert everything == list(range(200))


def test_the_end_of_a_partition_counts_only_after_the_records_before_it() -> None:
    async def scenario() -> tuple[bool, list[int], int]:
        feed, intake = make_intake()
        intake.arrived(0.0, [Raw(0), Raw(1), Raw(2, end=True), Raw(0, topic_="dlq")])
        await turns_until_empty(intake)
        return feed.ready, decoded(feed), feed.pipeline.dead_letters

    ready, offsets, dead_letters = asyncio.run(scenario())
    assert ready and offsets == [0, 1] and dead_letters == 1


def test_the_consumer_thread_waits_while_too_much_is_pending() -> None:
    async def scenario() -> tuple[bool, bool]:
        _, intake = make_intake(max_pending=10)
        intake.arrived(0.0, [Raw(offset) for offset in range(30)])
        full = intake.room.is_set()
        await turns_until_empty(intake)
        return full, intake.room.is_set()

    room_when_full, room_when_drained = asyncio.run(scenario())
    assert not room_when_full and room_when_drained
