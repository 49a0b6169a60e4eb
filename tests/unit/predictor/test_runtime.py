"""TickHandler: one outcome per record, dead letters keep the original bytes and say why."""

from __future__ import annotations

from tickcast.common.records import Lineage, Tick
from tickcast.predictor.runtime import TickHandler
from tickcast.predictor.settings import PredictorSettings

NOW_MS = 1_700_000_000_000


def handler() -> TickHandler:
    return TickHandler(PredictorSettings(bootstrap_servers="127.0.0.1:1", worker_id="unit"))


def test_good_tick_becomes_a_decodable_prediction_with_lineage() -> None:
    h = handler()
    value = h.tick_codec.encode(Tick("SPY", 100.0, 1.0, NOW_MS).to_avro())
    outcome = h.handle(b"SPY", value, Lineage("ticks", 3, 42, NOW_MS))
    assert not outcome.is_dead_letter and outcome.key == b"SPY"
    record = h.prediction_codec.decode(outcome.value or b"")
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == ("ticks", 3, 42)
    assert record["worker"] == "unit" and record["status"] == "WARMING_UP"
    assert h.counters.predictions_out == 1 and not h.counters.dead_letters


def test_bad_tick_becomes_a_dead_letter_with_original_bytes_and_reason() -> None:
    h = handler()
    value = h.tick_codec.encode(Tick("SPY", -5.0, 1.0, NOW_MS).to_avro())
    outcome = h.handle(b"SPY", value, Lineage("ticks", 1, 7, NOW_MS))
    assert outcome.is_dead_letter and outcome.value == value and outcome.key == b"SPY"
    headers = dict(outcome.dead_letter_headers or [])
    assert headers["tickcast.reason"] == b"bad_price"
    assert b"-5.0" in headers["tickcast.message"]
    assert headers["tickcast.source.offset"] == b"7" and headers["tickcast.source.partition"] == b"1"
    assert h.counters.dead_letters == {"bad_price": 1}


def test_a_model_failure_is_a_dead_letter_not_a_crash() -> None:
    h = handler()

    class Broken:
        def learn_one(self, x: object, y: object) -> None:
            raise ValueError("boom")

        def predict_one(self, x: object) -> float:
            raise ValueError("boom")

    h.forecaster.state("IBM").model = Broken()
    for i in range(40):
        value = h.tick_codec.encode(Tick("IBM", 100.0 + i % 3, 1.0, NOW_MS + i).to_avro())
        h.handle(b"IBM", value, Lineage("ticks", 0, i, NOW_MS))
    assert h.counters.dead_letters["processing_error"] > 0
    assert h.counters.ticks_in == 40
