"""PredictorSettings refuses what the worker could not start with: one line at load, never a traceback later."""

from __future__ import annotations

import gc

import confluent_kafka
import pytest
from pydantic import ValidationError

from tickcast.predictor.settings import PredictorSettings

#: Settings handed to librdkafka or to gc.set_threshold, which take a C int: 2**31 failed at start with
#: KafkaException ("value -2147483648 is outside allowed range") or OverflowError, as a traceback.
C_INT_SETTINGS = ("output_message_timeout_ms", "output_queue_max_messages", "gc_gen0_threshold")


@pytest.mark.parametrize("name", C_INT_SETTINGS)
def test_a_value_past_a_c_int_is_a_bad_setting(name: str) -> None:
    with pytest.raises(ValidationError, match=name):
        PredictorSettings(**{name: 2**31})


def test_the_largest_values_accepted_start_the_output_producer_and_the_collector() -> None:
    largest = PredictorSettings(**{name: 2**31 - 1 for name in C_INT_SETTINGS})
    confluent_kafka.Producer(
        {
            "bootstrap.servers": "127.0.0.1:1",
            "message.timeout.ms": largest.output_message_timeout_ms,
            "queue.buffering.max.messages": largest.output_queue_max_messages,
        }
    )
    before = gc.get_threshold()
    try:
        gc.set_threshold(largest.gc_gen0_threshold, *before[1:])
    finally:
        gc.set_threshold(*before)
