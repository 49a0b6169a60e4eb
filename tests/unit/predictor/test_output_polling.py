"""Delivery reports are served at least every few hundred sends, even when the caller polls only per fetch."""

from __future__ import annotations

from typing import Any

from tickcast.common.security import KafkaClientSettings
from tickcast.predictor.output import POLL_EVERY_SENDS, OutputProducer


class CountedPolls:
    """The real librdkafka producer, with its polls counted."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.polls = 0

    def produce(self, *args: Any, **kwargs: Any) -> None:
        self.real.produce(*args, **kwargs)

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return int(self.real.poll(timeout))

    def flush(self, timeout: float) -> int:
        return int(self.real.flush(timeout))

    def __len__(self) -> int:
        return len(self.real)


def test_a_long_run_of_sends_serves_delivery_reports_on_its_own() -> None:
    # A drain's fetch can bring tens of thousands of ticks; with reports served only after it, librdkafka's
    # queue would fill with answered messages and every send would wait for room.
    output = OutputProducer(KafkaClientSettings(bootstrap_servers="127.0.0.1:1"), 0, log_level=0)
    counted = CountedPolls(output._producer)
    output._producer = counted  # type: ignore[assignment]
    try:
        for n in range(2 * POLL_EVERY_SENDS + 1):
            assert output.send("predictions", b"SPY", b"%d" % n)
        assert counted.polls == 2
        output.poll()  # the caller's own poll starts the count afresh
        for n in range(POLL_EVERY_SENDS - 1):
            assert output.send("predictions", b"SPY", b"%d" % n)
        assert counted.polls == 3
    finally:
        output._producer = counted.real
        output.close(0.0)
