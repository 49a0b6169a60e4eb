"""A promotion on the real broker: an audit record on model-events, the served model's name, and a restart."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.model_events import MODEL_EVENT_SCHEMA_FILE, ModelEvent
from tickcast.common.records import Prediction, Tick
from tickcast.predictor.snapshot_keys import new_key
from tickcast.producer.publisher import publish_all
from tickcast.testing.drain import read_predictions_to_end, read_to_end
from tickcast.testing.environment import run_tickcast
from tickcast.testing.pipeline import Pipeline, wait_for_assignment
from tickcast.testing.waiting import wait_for

pytestmark = pytest.mark.integration

SYMBOL = "BNC"
START_MS = 1_700_000_000_000


@pytest.fixture
def pipeline(broker: object, unique: str, tmp_path: Path) -> Iterator[Pipeline]:
    with Pipeline(
        bootstrap_servers=broker.bootstrap_servers,  # type: ignore[attr-defined]
        unique=unique,
        log_dir=tmp_path,
        partitions=1,
        model="persistence",
        extra_env={
            "TICKCAST_CHALLENGERS": "mean-reversion",
            "TICKCAST_PROMOTION_MIN_SAMPLES": "100",
            "TICKCAST_PROMOTION_COOLDOWN": "0",
            # The warm-up's looks are unit-tested; here the promotion is the rule's, with its evidence.
            "TICKCAST_PROMOTION_WARM_UP_FIRST_LOOK": "0",
            "TICKCAST_DRIFT_DETECTOR": "off",
            # Selection runs on the shortest horizon; a bid-ask bounce is a next-tick pattern.
            "TICKCAST_HORIZONS": "1t",
            "TICKCAST_SNAPSHOT_KEY": new_key(),
            "TICKCAST_SNAPSHOT_EVERY_TICKS": "100",
            "TICKCAST_SNAPSHOT_EVERY_S": "1",
        },
    ) as running:
        yield running


def bouncing_ticks(count: int, start: int = 0, seed: int = 3) -> list[Tick]:
    """Each move undoes about half the last one (a bid-ask bounce): mean reversion beats persistence."""
    rng, log_price, last, ticks = random.Random(seed), math.log(100.0), 1.0, []
    for index in range(start + count):
        move = -0.5 * last + rng.gauss(0.0, 1.0)
        log_price += move / 1e4
        last = move
        if index >= start:
            ticks.append(Tick(SYMBOL, math.exp(log_price), 1.0, START_MS + index))
    return ticks


def model_events(pipeline: Pipeline) -> list[ModelEvent]:
    codec = AvroCodec(open_schema_store(None), "model-events-value", load_schema(MODEL_EVENT_SCHEMA_FILE))
    return [
        ModelEvent.from_avro(codec.decode(r.value or b""))
        for r in read_to_end(pipeline.kafka, pipeline.model_events_topic)
    ]


def predictions(pipeline: Pipeline) -> list[Prediction]:
    return read_predictions_to_end(pipeline.kafka, pipeline.predictions_topic)


def test_a_promotion_is_audited_served_and_survives_a_restart(pipeline: Pipeline) -> None:
    publisher = pipeline.publisher()
    publish_all(publisher, bouncing_ticks(800))
    assert publisher.close() == 0
    wait_for_assignment(pipeline, pipeline.start_workers(1), timeout_s=120)
    wait_for(lambda: len(predictions(pipeline)) >= 800, 30, "800 predictions", diagnostics=pipeline.worker_logs)

    [event] = model_events(pipeline)
    assert (event.kind, event.symbol, event.from_model, event.to_model) == ("PROMOTION", SYMBOL, "persistence",
                                                                           "mean-reversion")  # fmt: skip
    assert event.samples >= 100 and event.p_value <= event.level and event.source_topic == pipeline.ticks_topic
    served = [p.model_name for p in sorted(predictions(pipeline), key=lambda p: p.source_offset)]
    switch = served.index("mean-reversion")
    assert set(served[:switch]) == {"persistence"} and set(served[switch:]) == {"mean-reversion"}
    # The tick whose return decided (the label of the previous forecast) is already forecast by the new champion.
    assert switch == event.source_offset, (switch, event.source_offset)

    pipeline.stop()  # a graceful stop writes the final snapshots
    publisher = pipeline.publisher()
    publish_all(publisher, bouncing_ticks(100, start=800))
    assert publisher.close() == 0
    wait_for_assignment(pipeline, pipeline.start_workers(1), timeout_s=120)
    wait_for(lambda: len(predictions(pipeline)) >= 900, 30, "900 predictions", diagnostics=pipeline.worker_logs)
    after = [p for p in predictions(pipeline) if p.source_offset >= 800]
    assert {p.model_name for p in after} == {"mean-reversion"}, "the restarted worker serves the restored champion"
    assert {p.state_origin for p in after} == {"SNAPSHOT"}
    assert len(model_events(pipeline)) == 1, "no second promotion after the restore"

    shown = run_tickcast("models", "--symbol", SYMBOL, "--json", env=pipeline.env())
    assert shown.returncode == 0, shown.stderr
    [story] = [json.loads(line) for line in shown.stdout.splitlines()]
    assert story["champion"] == "mean-reversion" and [c["kind"] for c in story["changes"]] == ["PROMOTION"]
    # The standings are the evidence: the challengers as they stood against the champion when it was decided.
    assert [s["model"] for s in story["standings"]] == ["mean-reversion"]
