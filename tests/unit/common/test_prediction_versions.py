"""Prediction contract v3 (schema id 7) with the real codec: old readers read it, it reads old records."""

from __future__ import annotations

import random

import pytest

from tickcast.common.contracts import open_schema_store
from tickcast.common.contracts.base import load_schema
from tickcast.common.contracts.codec import AvroCodec
from tickcast.common.records import Lineage, Prediction, Tick
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.horizons import parse_horizons
from tickcast.predictor.models import model_spec

FILES = {2: "prediction-v1.avsc", 6: "prediction-v2.avsc", 7: "prediction.avsc"}


def codec(schema_id: int) -> AvroCodec:
    return AvroCodec(open_schema_store(None), "predictions-value", load_schema(FILES[schema_id]))


def a_v3_prediction() -> Prediction:
    forecaster = Forecaster(model_spec("linear"), "w", horizons=parse_horizons("1s,10s,60s"), coverage=0.9)
    rng, price, prediction = random.Random(5), 100.0, None
    for i in range(3000):
        price = round(price * (1 + rng.gauss(0.0, 1e-4)), 2)
        prediction = forecaster.process(Tick("SPY", price, 1.0, i * 250), Lineage("ticks", 1, i, i), i * 1000)
    assert prediction is not None and prediction.forecasts[2].ready and prediction.empirical_coverage is not None
    return prediction


@pytest.mark.parametrize("old_id", [2, 6])
def test_an_old_reader_reads_a_v3_record_and_gets_the_shortest_horizon(old_id: int) -> None:
    prediction = a_v3_prediction()
    data = codec(7).encode_object(prediction)
    assert data[:5] == b"\x00\x00\x00\x00\x07"
    read = codec(old_id).decode(data)
    assert read["predicted_return_bps"] == prediction.forecasts[0].predicted_return_bps
    assert read["source_offset"] == prediction.source_offset and "forecasts" not in read


def test_the_hand_written_encoder_equals_fastavro_on_a_v3_record() -> None:
    prediction = a_v3_prediction()
    assert codec(7).encode_object(prediction) == codec(7).encode(prediction.to_avro())
    assert Prediction.from_avro(codec(7).decode(codec(7).encode_object(prediction))) == prediction


@pytest.mark.parametrize("old_id", [2, 6])
def test_a_v3_reader_reads_an_old_record_with_the_defaults(old_id: int) -> None:
    written = Prediction("S", 1, 2.0, 0.5, 2.0001, 1, "READY", "m", "1", 3, "t", 0, 9, 1, 2, "w").to_avro()
    old_fields = {f["name"] for f in load_schema(FILES[old_id])["fields"]}
    data = codec(old_id).encode({k: v for k, v in written.items() if k in old_fields})
    read = Prediction.from_avro(codec(7).decode(data))
    assert (read.horizon_ms, read.target_time, read.interval_lo_bps, read.forecasts) == (0, None, None, [])
    assert read.predicted_return_bps == 0.5 and read.horizon_ticks == 1
