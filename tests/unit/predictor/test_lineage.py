"""A prediction names its model recipe and where its model state came from: learned here, or a snapshot."""

from __future__ import annotations

import asyncio

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.records import Lineage, Prediction, Tick
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.models import model_spec

from .test_restore import OWNER, PARTITION, FlakyReader, keeper


def test_a_fresh_state_names_the_first_tick_it_learned_from_and_the_recipe() -> None:
    forecaster = Forecaster(model_spec("linear"), worker="w")
    predictions = [
        forecaster.process(Tick("SPY", 100.0, 1.0, offset), Lineage("ticks", 3, offset, 0), now_us=0)
        for offset in range(40, 45)
    ]
    assert {(p.state_origin, p.state_since_offset, p.state_snapshot_generation) for p in predictions} == {
        ("FRESH", 40, -1)
    }
    assert {p.model_recipe_version for p in predictions} == {model_spec("linear").version}


def test_a_restored_state_names_its_snapshot() -> None:
    async def scenario() -> Prediction:
        k = keeper(FlakyReader(failures=0, snapshots={b"SPY": OWNER}))
        await k.on_assigned({PARTITION})
        await k.restored()
        return k.forecaster.process(Tick("SPY", 101.0, 1.0, 99), Lineage("ticks", PARTITION, 30, 0), now_us=0)

    prediction = asyncio.run(scenario())
    # OWNER: 30 ticks (offsets 0..29) in generation 5.
    assert (prediction.state_origin, prediction.state_since_offset, prediction.state_snapshot_generation) == (
        "SNAPSHOT", 29, 5
    )  # fmt: skip


def test_a_prediction_of_schema_id_2_reads_with_unknown_origin() -> None:
    store = open_schema_store(None)
    old = AvroCodec(store, "predictions-value", load_schema("prediction-v1.avsc"))
    new = AvroCodec(store, "predictions-value", load_schema("prediction.avsc"))
    written = Prediction("S", 1, 2.0, 0.5, 2.0001, 1, "READY", "m", "1", 3, "t", 0, 9, 1, 2, "w").to_avro()
    for name in ("model_recipe_version", "state_origin", "state_since_offset", "state_snapshot_generation"):
        del written[name]
    data = old.encode(written)
    assert data[:5].hex() == "0000000002"
    read = Prediction.from_avro(new.decode(data))
    assert (read.state_origin, read.state_since_offset, read.model_recipe_version) == ("UNKNOWN", -1, "")
    assert new.schema_id == 7
