"""`tickcast explain` on the session broker: a prediction, its tick, its model, and its state's origin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tickcast.broker.embedded import EmbeddedBroker
from tickcast.common.records import Tick
from tickcast.predictor.snapshot_keys import new_key
from tickcast.subscriber.reader import Received
from tickcast.testing.environment import run_tickcast
from tickcast.testing.pipeline import Pipeline
from tickcast.testing.reading import collect

pytestmark = pytest.mark.integration

SYMBOL = "LIN"
START_MS = 1_700_000_000_000


def explained(pipeline: Pipeline, received: Received) -> dict[str, Any]:
    result = run_tickcast(
        "explain", "--topic", received.topic, "--partition", str(received.partition),
        "--offset", str(received.offset), "--json", env=pipeline.env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def publish(pipeline: Pipeline, first: int, count: int) -> None:
    publisher = pipeline.publisher()
    for n in range(first, first + count):
        publisher.publish(Tick(SYMBOL, 100.0 + (n % 5) * 0.1, 1.0, START_MS + n))
    assert publisher.close() == 0


def test_explain_names_the_tick_then_the_snapshot_a_restored_state_came_from(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    pipeline = Pipeline(
        broker.bootstrap_servers, unique, tmp_path / "workers", partitions=2,
        extra_env={"TICKCAST_SNAPSHOT_KEY": new_key(), "TICKCAST_SNAPSHOT_EVERY_TICKS": "10"},
    )  # fmt: skip
    pipeline.create_topics()
    try:
        reader = pipeline.reader()
        pipeline.start_workers(1)
        publish(pipeline, 0, 30)
        first = collect(reader, 30, 90, "predictions", pipeline)
        fresh = explained(pipeline, first[-1])
        assert fresh["tick"]["event_time"] == START_MS + 29 and fresh["tick"]["symbol"] == SYMBOL
        assert fresh["prediction"]["source_offset"] == first[-1].prediction.source_offset  # type: ignore[union-attr]
        assert fresh["model"]["model_name"] == "linear" and fresh["model"]["model_recipe_version"]
        assert fresh["state"]["state_origin"] == "FRESH"
        assert fresh["state"]["state_since_offset"] == first[0].prediction.source_offset  # type: ignore[union-attr]

        # A clean stop writes a last snapshot; the next worker restores the symbol from it.
        pipeline.stop()
        pipeline.pool = None
        pipeline.start_workers(1)
        publish(pipeline, 30, 5)
        later = collect(reader, 5, 90, "predictions", pipeline)
        reader.close()
        restored = explained(pipeline, later[-1])
        assert restored["state"]["state_origin"] == "SNAPSHOT", restored
        snapshot = restored["snapshot"]
        assert snapshot.get("symbol") == SYMBOL and snapshot["topic"] == f"{pipeline.group_id}-snapshots", snapshot
        assert snapshot["applied_offset"] == restored["state"]["state_since_offset"]
        assert "payload" not in snapshot and "signature" not in snapshot
    finally:
        pipeline.stop()


def test_explain_says_plainly_when_there_is_no_prediction_there(pipeline: Pipeline) -> None:
    result = run_tickcast(
        "explain",
        "--topic",
        pipeline.predictions_topic,
        "--partition",
        "0",
        "--offset",
        "5",
        "--timeout",
        "3",
        env=pipeline.env(),
    )
    assert result.returncode == 1
    assert f"no record at {pipeline.predictions_topic}:0:5" in result.stderr
