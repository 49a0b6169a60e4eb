"""A flood of unique symbols: a worker keeps at most TICKCAST_MAX_SYMBOLS, its memory stays bounded, it stays up."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tickcast.common.records import Tick
from tickcast.ops.workers import WorkerProcess
from tickcast.predictor.snapshot_keys import new_key
from tickcast.testing.drain import count_answers, read_predictions_to_end, read_to_end, tick_ids
from tickcast.testing.pipeline import Pipeline, wait_for_assignment
from tickcast.testing.stats import worker_stats
from tickcast.testing.waiting import wait_for

pytestmark = pytest.mark.integration

START_MS = 1_700_000_000_000
MAX_SYMBOLS = 2_000
FLOOD = 20_000
#: Uncapped, 18,000 more symbols of ~6 KB each would add ~110 MB. Capped, what is left is allocator slack, the
#: producer's buffers and garbage not yet collected: measured +31 MB with CPython's GC thresholds and no drift
#: detector, +36 MB with the detector (on by default), +42 MB with it and the worker's gen-0 threshold of 20,000
#: (TICKCAST_GC_GEN0_THRESHOLD), which lets evicted states wait longer for the collector. The bound stays well
#: under the uncapped growth.
RSS_GROWTH_BOUND_MB = 55.0


@pytest.fixture
def pipeline(broker: object, unique: str, tmp_path: Path) -> Iterator[Pipeline]:
    with Pipeline(
        bootstrap_servers=broker.bootstrap_servers,  # type: ignore[attr-defined]
        unique=unique,
        log_dir=tmp_path,
        partitions=4,
        model="linear",
        extra_env={
            "TICKCAST_SNAPSHOT_KEY": new_key(),
            "TICKCAST_SNAPSHOT_EVERY_S": "1",
            "TICKCAST_MAX_SYMBOLS": str(MAX_SYMBOLS),
            # Flood symbols idle this long when evicted are forgotten for good (tombstones); the rest leave snapshots.
            "TICKCAST_SYMBOL_TTL_S": "2",
            # The bound below is for one next-tick horizon (~5 KB per fresh symbol). With the default three
            # horizons a fresh symbol holds ~12 KB; that cost is measured by `python -m bench --only horizons`.
            "TICKCAST_HORIZONS": "1t",
        },
    ) as running:
        yield running


def publish_unique(pipeline: Pipeline, first: int, count: int) -> None:
    publisher = pipeline.publisher()
    for index in range(first, first + count):
        publisher.publish(Tick(f"FLOOD{index:06d}", 10.0 + index % 97, 1.0, START_MS + index))
    assert publisher.close() == 0


def answered(pipeline: Pipeline, worker: WorkerProcess, count: int) -> None:
    wait_for(
        lambda: (worker_stats(worker) or {}).get("predictions_out", 0) >= count,
        180, f"{count} predictions", check=pipeline.check_workers_alive, diagnostics=pipeline.worker_logs,
    )  # fmt: skip


@pytest.mark.solo
def test_a_flood_of_unique_symbols_is_evicted_and_the_worker_stays_bounded_and_healthy(pipeline: Pipeline) -> None:
    worker = pipeline.start_workers(1)[0]
    wait_for_assignment(pipeline, [worker])
    rss = psutil.Process(worker.process.pid)
    warm = 2 * MAX_SYMBOLS  # past the cap once, so evictions and their buffers are part of the baseline
    publish_unique(pipeline, 0, warm)
    answered(pipeline, worker, warm)
    baseline_mb = rss.memory_info().rss / 2**20
    publish_unique(pipeline, warm, FLOOD - warm)
    answered(pipeline, worker, FLOOD)
    # The cap holds after each batch: the last batch's new symbols are evicted once their predictions are out.
    wait_for(
        lambda: (worker_stats(worker) or {}).get("symbols", FLOOD) <= MAX_SYMBOLS,
        60, f"the worker to hold at most {MAX_SYMBOLS} symbols", diagnostics=pipeline.worker_logs,
    )  # fmt: skip
    grown_mb = rss.memory_info().rss / 2**20 - baseline_mb
    stats = worker_stats(worker) or {}
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/health", timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    print(f"flood of {FLOOD}: RSS {baseline_mb:.0f} MB after {warm} symbols, +{grown_mb:.1f} MB after; {stats}")
    assert stats["symbols"] <= MAX_SYMBOLS and stats["symbols_evicted"] >= FLOOD - MAX_SYMBOLS, stats
    assert "tickcast_symbols_evicted_total" in metrics
    assert grown_mb < RSS_GROWTH_BOUND_MB, f"RSS grew {grown_mb:.1f} MB with at most {MAX_SYMBOLS} symbols held"
    pipeline.stop()
    ticks = tick_ids(pipeline.ticks_topic, read_to_end(pipeline.kafka, pipeline.ticks_topic))
    answers = count_answers(ticks, read_predictions_to_end(pipeline.kafka, pipeline.predictions_topic))
    assert not answers.missing, f"flood ticks without a prediction: {answers}"
