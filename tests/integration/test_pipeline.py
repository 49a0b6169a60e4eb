"""End to end on the real (embedded) broker: ticks in, exactly one prediction per tick out."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from tickcast.broker.embedded import EmbeddedBroker
from tickcast.common.records import Lineage, Prediction
from tickcast.common.topics import partition_for, symbol_key
from tickcast.ops.workers import assignment_of
from tickcast.predictor.models import model_spec
from tickcast.predictor.runtime import new_forecaster
from tickcast.predictor.settings import PredictorSettings
from tickcast.producer.synthetic import SyntheticFeed, symbol_names
from tickcast.testing.drain import count_answers, read_predictions_to_end, read_to_end, tick_ids
from tickcast.testing.pipeline import Pipeline, wait_for_assignment
from tickcast.testing.reading import collect
from tickcast.testing.waiting import wait_for

pytestmark = pytest.mark.integration

START_MS = 1_700_000_000_000


def feed_clock() -> object:
    clock = iter(range(START_MS, START_MS + 10**9, 7))
    return lambda: next(clock)


def answers_once_stopped(pipeline: Pipeline, ticks: int) -> list[Prediction]:
    """Every prediction ever written for the ticks: wait for one per tick, stop the workers, read to the end.

    Stopping first means nothing more is coming, so a duplicate written after the first ``ticks`` answers
    is on the topic too; each tick on the ticks topic must then have exactly one prediction.
    """
    reader = pipeline.reader()
    collect(reader, ticks, 90, "predictions", pipeline)
    reader.close()
    pipeline.stop()
    predictions = read_predictions_to_end(pipeline.kafka, pipeline.predictions_topic)
    sent = tick_ids(pipeline.ticks_topic, read_to_end(pipeline.kafka, pipeline.ticks_topic))
    assert len(sent) == ticks
    answers = count_answers(sent, predictions)
    assert answers.exactly_once, f"not exactly one prediction per tick: {answers}"
    return predictions


def test_every_tick_gets_exactly_one_prediction_in_symbol_order(pipeline: Pipeline) -> None:
    pipeline.start_workers(1)
    publisher = pipeline.publisher()
    ticks = SyntheticFeed(symbol_names(12), seed=3, clock_ms=feed_clock()).take(1500)  # type: ignore[arg-type]
    for tick in ticks:
        publisher.publish(tick)
    assert publisher.close() == 0 and publisher.stats.delivered == len(ticks)

    predictions = answers_once_stopped(pipeline, len(ticks))

    by_symbol: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for p in predictions:
        by_symbol[p.symbol].append((p.source_offset, p.last_price))
    sent_prices: dict[str, list[float]] = defaultdict(list)
    for tick in ticks:
        sent_prices[tick.symbol].append(tick.price)
    for symbol, answered in by_symbol.items():
        offsets = [offset for offset, _ in answered]
        assert offsets == sorted(offsets), f"{symbol}: predictions out of order"
        assert [price for _, price in answered] == sent_prices[symbol], f"{symbol}: prices do not follow the ticks"
    for p in predictions:
        assert p.source_topic == pipeline.ticks_topic
        assert p.source_partition == publisher.stats.partitions[p.symbol]
        assert (p.model_name, p.model_version) == ("linear", model_spec("linear").full_version)
    learned = defaultdict(list)
    for p in predictions:
        learned[p.symbol].append(p.ticks_learned)
    # ~125 ticks per symbol over ~10 s of event time: the shortest default horizon (1 s) learns a label every
    # ~125 ms at most (the label queue's spacing), so a symbol completes far fewer labels than it has ticks.
    assert all(series == sorted(series) and series[-1] > 20 for series in learned.values())

    # `tickcast evaluate` replays ticks through Forecaster.process with no broker: it must say exactly what
    # the worker did, prediction for prediction, built from the worker's own settings.
    offline = new_forecaster(PredictorSettings(**pipeline.settings_kwargs(), model="linear", worker_id="offline"))
    expected = defaultdict(list)
    for offset, tick in enumerate(ticks):
        p = offline.process(tick, Lineage("replay", 0, offset, tick.event_time), now_us=0)
        expected[tick.symbol].append((p.predicted_return_bps, p.status, p.ticks_learned, p.flags))
    for symbol in by_symbol:
        worker_side = [
            (p.predicted_return_bps, p.status, p.ticks_learned, p.flags)
            for p in sorted((p for p in predictions if p.symbol == symbol), key=lambda p: p.source_offset)
        ]
        assert worker_side == expected[symbol], f"{symbol}: the worker and an offline replay disagree"


def test_confluent_producer_and_faust_agree_on_every_symbols_partition(pipeline: Pipeline) -> None:
    pipeline.start_workers(1)
    publisher = pipeline.publisher()
    symbols = symbol_names(200)
    clock = feed_clock()
    from tickcast.common.records import Tick

    for symbol in symbols:
        publisher.publish(Tick(symbol, 100.0, 1.0, clock()))  # type: ignore[operator]
    assert publisher.close() == 0

    reader = pipeline.reader()
    received = collect(reader, len(symbols), 90, "predictions", pipeline)
    reader.close()
    for record in received:
        prediction = record.prediction
        assert prediction is not None
        expected = partition_for(symbol_key(prediction.symbol), pipeline.partitions)
        assert publisher.stats.partitions[prediction.symbol] == expected, "librdkafka disagrees with murmur2"
        assert prediction.source_partition == expected, "Faust consumed the tick from another partition"
        assert record.partition == expected, "Faust produced the prediction to another partition than its tick"


def test_two_workers_share_the_partitions_and_answer_every_tick(pipeline: Pipeline) -> None:
    workers = pipeline.start_workers(2)
    assignment = wait_for_assignment(pipeline, workers)
    assert all(parts for parts in assignment.values()), f"a worker got no partition: {assignment}"

    publisher = pipeline.publisher()
    ticks = SyntheticFeed(symbol_names(24), seed=5, clock_ms=feed_clock()).take(2000)  # type: ignore[arg-type]
    for tick in ticks:
        publisher.publish(tick)
    assert publisher.close() == 0

    predictions = answers_once_stopped(pipeline, len(ticks))
    owner = {partition: wid for wid, parts in assignment.items() for partition in parts}
    for p in predictions:
        assert p.worker == owner[p.source_partition], f"{p.symbol} answered by a worker that does not own it"
    assert {p.worker for p in predictions} == set(assignment)


def test_a_worker_beyond_the_partition_count_stays_idle_and_says_why(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    with Pipeline(broker.bootstrap_servers, unique=unique, log_dir=tmp_path, partitions=1) as pipeline:
        workers = pipeline.start_workers(2)

        def one_owner_one_idle() -> bool:
            owned = assignment_of(workers)
            return owned is not None and sorted(map(len, owned.values())) == [0, 1]

        wait_for(one_owner_one_idle, 60, "one worker to own the partition and the other to own none",
                 check=pipeline.check_workers_alive, diagnostics=pipeline.worker_logs)  # fmt: skip
        owned = assignment_of(workers)
        assert owned is not None
        [idle] = [w for w in workers if not owned[w.worker_id]]

        def said_idle() -> list[dict[str, object]]:
            lines = idle.log_path.read_text(errors="replace").splitlines()
            return [json.loads(line) for line in lines if '"worker_idle"' in line]

        wait_for(
            lambda: bool(said_idle()), 20, f"{idle.worker_id} to log worker_idle", diagnostics=pipeline.worker_logs
        )
        assert said_idle()[-1]["partitions"] == 1
        pipeline.check_workers_alive()
