"""Records from a gateway's JSON: what a newer gateway adds is ignored, as the Avro reader ignores it from Kafka."""

from __future__ import annotations

import json

from tickcast.client.records import PredictionRecord
from tickcast.common.records import HorizonForecast, Prediction
from tickcast.gateway.cache import Published


def test_fields_a_newer_contract_adds_to_a_horizon_are_ignored_like_those_it_adds_to_the_prediction() -> None:
    # The predictions contract is FULL_TRANSITIVE: a newer one may add a field (with a default) to a horizon's
    # forecast, and a newer gateway then serves it to clients that do not know it yet.
    horizon = HorizonForecast("1s", 1_000, 0, 2_000, 0.5, 2.0001, True, 12)
    prediction = Prediction(
        "SPY", 1_000, 2.0, 0.5, 2.0001, 1, "READY", "m", "1", 3, "ticks", 0, 9, 1, 2_000, "w", forecasts=[horizon]
    )
    served = json.loads(Published.of(4, 17, prediction, 0.0).body)
    served["age_ms"] = 1.5
    served["a_newer_field"] = 7
    served["forecasts"][0]["a_newer_horizon_field"] = "x"
    try:
        record = PredictionRecord.from_json(served)
    except TypeError as exc:
        raise AssertionError(f"a newer gateway's prediction could not be read: {exc}") from exc
    assert record == PredictionRecord.of(prediction, partition=4, offset=17)
