"""A kill -9 with labels pending: the survivor neither loses nor double-learns them (issue 15).

Every prediction on the topic, duplicates included, must equal what one uninterrupted forecaster makes from the
same ticks in the same order: labels learned per horizon, forecasts and interval coverage. A pending label lost
at the handover would show as a lower ``labels_learned`` from there on, one learned twice as a higher one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_failover import (
    SteadyFeed,
    answers_once_stopped,
    takeover_bound_s,
    wait_until_every_tick_answered,
)
from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import TICK_SCHEMA_FILE
from tickcast.common.records import Lineage, Prediction, Tick
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.horizons import parse_horizons
from tickcast.predictor.models import DEFAULT_MODEL, model_spec
from tickcast.predictor.snapshot_keys import new_key
from tickcast.testing.drain import read_to_end
from tickcast.testing.pipeline import Pipeline, wait_for_assignment
from tickcast.testing.stats import worker_stats
from tickcast.testing.waiting import wait_for

pytestmark = pytest.mark.integration

#: Short horizons, so labels complete within seconds of the test's event time (ticks 3 ms apart, 12 symbols).
HORIZONS = "200ms,1s"
CAPACITY = 4


@pytest.fixture
def pipeline(broker: object, unique: str, tmp_path: Path) -> Iterator[Pipeline]:
    with Pipeline(
        bootstrap_servers=broker.bootstrap_servers,  # type: ignore[attr-defined]
        unique=unique,
        log_dir=tmp_path,
        extra_env={
            "TICKCAST_SNAPSHOT_KEY": new_key(),
            "TICKCAST_SNAPSHOT_EVERY_TICKS": "50",
            "TICKCAST_SNAPSHOT_EVERY_S": "1",
            "TICKCAST_HORIZONS": HORIZONS,
            "TICKCAST_LABEL_CAPACITY": str(CAPACITY),
            "TICKCAST_INTERVAL_COVERAGE": "0.9",
        },
    ) as running:
        yield running


def replayed(pipeline: Pipeline) -> dict[tuple[int, int], Prediction]:
    """What one forecaster that never failed makes of the topic's ticks, by (partition, offset)."""
    codec = AvroCodec(open_schema_store(None), f"{pipeline.ticks_topic}-value", load_schema(TICK_SCHEMA_FILE))
    forecaster = Forecaster(
        model_spec(DEFAULT_MODEL), "replay", horizons=parse_horizons(HORIZONS), coverage=0.9, gap_ms=300_000,
        capacity=CAPACITY,
    )  # fmt: skip
    out = {}
    for record in read_to_end(pipeline.kafka, pipeline.ticks_topic):
        tick = Tick.from_avro(codec.decode(record.value or b""))
        lineage = Lineage(pipeline.ticks_topic, record.partition, record.offset, 0)
        out[record.partition, record.offset] = forecaster.process(tick, lineage, 0)
    return out


def learned(p: Prediction) -> list[tuple[int, float, float | None]]:
    return [(f.labels_learned, f.predicted_return_bps, f.empirical_coverage) for f in p.forecasts]


def test_a_failover_neither_loses_nor_double_learns_pending_labels(pipeline: Pipeline) -> None:
    workers = pipeline.start_workers(2)
    assignment = wait_for_assignment(pipeline, workers)
    victim, survivor = workers
    with SteadyFeed(pipeline.publisher(), symbols=12, rate=200) as feed:
        wait_for(
            lambda: all((worker_stats(w) or {}).get("predictions_out", 0) > 300 for w in workers),
            60, "both workers to answer 300 ticks", diagnostics=pipeline.worker_logs,
        )  # fmt: skip
        os.kill(victim.process.pid, signal.SIGKILL)
        victim_partitions = set(assignment[victim.worker_id])
        wait_for(
            lambda: victim_partitions <= set((worker_stats(survivor) or {}).get("assigned_partitions", [])),
            takeover_bound_s(pipeline) + 30, "the survivor to take over", diagnostics=pipeline.worker_logs,
        )  # fmt: skip
        before = (worker_stats(survivor) or {})["predictions_out"]
        wait_for(
            lambda: (worker_stats(survivor) or {})["predictions_out"] > before + 300,
            30, "work to go on", diagnostics=pipeline.worker_logs,
        )  # fmt: skip
        sent = feed.stop()
    wait_until_every_tick_answered(pipeline, sent, 60)
    answers, predictions = answers_once_stopped(pipeline, sent)
    assert not answers.missing, answers
    expected = replayed(pipeline)
    handed_over = {p.symbol for p in predictions if p.worker == victim.worker_id} & {
        p.symbol for p in predictions if p.worker == survivor.worker_id
    }
    assert handed_over, "no symbol changed hands"
    mismatched = [
        (p.symbol, p.source_offset, p.worker, learned(p), learned(expected[p.source_partition, p.source_offset]))
        for p in predictions
        if learned(p) != learned(expected[p.source_partition, p.source_offset])
    ]
    assert not mismatched, f"{len(mismatched)} predictions differ from an uninterrupted run, first: {mismatched[:3]}"
    assert all(p.forecasts[1].labels_learned > 0 for p in predictions[-50:]), "the 1 s horizon never learned"
