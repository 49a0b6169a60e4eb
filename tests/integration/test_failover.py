"""Scale out without forgetting: state follows its partition on join and on kill -9; no tick goes unanswered."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from tickcast.common.records import Prediction, Tick
from tickcast.predictor.snapshot_keys import new_key
from tickcast.producer.publisher import TickPublisher, publish_all
from tickcast.producer.synthetic import SyntheticFeed, symbol_names
from tickcast.testing.drain import AnswerCount, count_answers, read_predictions_to_end, read_to_end, tick_ids
from tickcast.testing.pipeline import SESSION_TIMEOUT_S, Pipeline, wait_for_assignment
from tickcast.testing.reading import predictions_of
from tickcast.testing.stats import worker_stats
from tickcast.testing.waiting import wait_for

pytestmark = pytest.mark.integration

START_MS = 1_700_000_000_000
#: After its session times out, a dead member's partitions move once the survivor hears of the rebalance (its
#: next heartbeat, every session/3 at most 3 s, see predictor.app), rejoins (~3 s on Tansu) and restores the
#: state of the partitions it gained (/stats lists a partition only then).
JOIN_AND_RESTORE_S = 8.0


@pytest.fixture
def pipeline(broker: object, unique: str, tmp_path: Path) -> Iterator[Pipeline]:
    with Pipeline(
        bootstrap_servers=broker.bootstrap_servers,  # type: ignore[attr-defined]
        unique=unique,
        log_dir=tmp_path,
        extra_env={
            "TICKCAST_SNAPSHOT_KEY": new_key(),
            "TICKCAST_SNAPSHOT_EVERY_TICKS": "100",
            "TICKCAST_SNAPSHOT_EVERY_S": "1",
        },
    ) as running:
        yield running


class SteadyFeed:
    """Publishes synthetic ticks at a fixed rate from a thread until stopped; remembers how many it sent."""

    def __init__(self, publisher: TickPublisher, symbols: int, rate: float) -> None:
        clock = iter(range(START_MS, START_MS + 10**10, 3))
        self.feed = SyntheticFeed(symbol_names(symbols), seed=11, clock_ms=lambda: next(clock))
        self.publisher = publisher
        self.rate = rate
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _counted(self) -> Iterator[Tick]:
        for tick in self.feed:
            yield tick
            self.sent += 1

    def _run(self) -> None:
        publish_all(self.publisher, self._counted(), rate=self.rate, should_stop=self._stop.is_set)
        self.publisher.close()

    def __enter__(self) -> SteadyFeed:
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=60)
        return self.sent

    def __exit__(self, *exc: object) -> None:
        self.stop()


def takeover_bound_s(pipeline: Pipeline) -> float:
    """How long after a kill -9 the survivor may take to own the dead worker's partitions."""
    heartbeat_s = min(3.0, SESSION_TIMEOUT_S / 3)
    return SESSION_TIMEOUT_S + heartbeat_s + JOIN_AND_RESTORE_S


def wait_until_every_tick_answered(pipeline: Pipeline, sent: int, timeout_s: float) -> None:
    """Until each of the ``sent`` ticks has a prediction (duplicates do not count towards ``sent``)."""
    reader = pipeline.reader()
    answered: set[tuple[int, int]] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while len(answered) < sent and time.monotonic() < deadline:
            answered.update((p.source_partition, p.source_offset) for p in predictions_of(reader.poll(timeout_s=0.2)))
    finally:
        reader.close()
    if len(answered) < sent:
        raise AssertionError(
            f"only {len(answered)} of {sent} ticks answered within {timeout_s}s\n{pipeline.worker_logs()}"
        )


def answers_once_stopped(pipeline: Pipeline, sent: int) -> tuple[AnswerCount, list[Prediction]]:
    """Stop the workers (nothing more will be written), then read ticks and predictions to their ends."""
    pipeline.stop()
    ticks = tick_ids(pipeline.ticks_topic, read_to_end(pipeline.kafka, pipeline.ticks_topic))
    assert len(ticks) == sent, f"{sent} ticks sent, {len(ticks)} on the topic"
    predictions = read_predictions_to_end(pipeline.kafka, pipeline.predictions_topic)
    return count_answers(ticks, predictions), predictions


def check_every_tick_answered_and_state_continuous(
    answers: AnswerCount, predictions: list[Prediction]
) -> dict[str, set[str]]:
    assert not answers.missing and not answers.strangers, f"not every tick answered once or more: {answers}"
    by_lineage: dict[tuple[int, int], list[Prediction]] = defaultdict(list)
    for p in predictions:
        by_lineage[(p.source_partition, p.source_offset)].append(p)
    for copies in by_lineage.values():
        # A duplicate comes from replaying the same ticks on the same restored state: it must be identical.
        first = copies[0]
        for other in copies[1:]:
            assert (other.ticks_learned, other.predicted_return_bps) == (
                first.ticks_learned,
                first.predicted_return_bps,
            )
    series: dict[str, list[Prediction]] = defaultdict(list)
    for (_, _), copies in sorted(by_lineage.items()):
        series[copies[0].symbol].append(copies[0])
    workers: dict[str, set[str]] = defaultdict(set)
    for symbol, answered in series.items():
        answered.sort(key=lambda p: p.source_offset)
        for before, after in itertools.pairwise(answered):
            step = after.ticks_learned - before.ticks_learned
            assert 0 <= step <= 1, (
                f"{symbol}: ticks_learned went {before.ticks_learned} -> {after.ticks_learned} at offset "
                f"{after.source_offset} (worker {before.worker} -> {after.worker}): state did not follow its partition"
            )
        workers[symbol] = {p.worker for p in answered}
    return workers


def test_state_follows_partitions_when_a_worker_joins(pipeline: Pipeline) -> None:
    first = pipeline.start_workers(1)[0]
    wait_for_assignment(pipeline, [first])
    with SteadyFeed(pipeline.publisher(), symbols=24, rate=250) as feed:
        # ~40 ticks of state per symbol before the newcomer joins: enough for a move to show in ticks_learned.
        wait_for(
            lambda: (worker_stats(first) or {}).get("predictions_out", 0) > 1000,
            90,
            "1000 predictions",
            diagnostics=pipeline.worker_logs,
        )
        second = pipeline.start_workers(1)[0]
        wait_for_assignment(pipeline, [first, second])
        wait_for(
            lambda: (worker_stats(second) or {}).get("predictions_out", 0) > 500,
            90,
            "the newcomer to work",
            diagnostics=pipeline.worker_logs,
        )
        sent = feed.stop()
    wait_until_every_tick_answered(pipeline, sent, 120)
    stats = worker_stats(second)
    answers, predictions = answers_once_stopped(pipeline, sent)
    workers = check_every_tick_answered_and_state_continuous(answers, predictions)
    # No crash, so no replay: the partitions moved at a commit, and no tick may be answered twice.
    assert not answers.repeated, f"a worker joining made duplicates: {answers}"
    moved = [symbol for symbol, names in workers.items() if len(names) == 2]
    assert moved, "no symbol moved to the new worker"
    assert stats is not None and stats["restored_symbols"] >= len(moved), stats


@pytest.mark.long
def test_kill_9_under_load_loses_no_tick_and_keeps_state(pipeline: Pipeline) -> None:
    workers = pipeline.start_workers(2)
    assignment = wait_for_assignment(pipeline, workers)
    victim, survivor = workers
    with SteadyFeed(pipeline.publisher(), symbols=24, rate=250) as feed:
        wait_for(
            lambda: all((worker_stats(w) or {}).get("predictions_out", 0) > 800 for w in workers),
            90, "both workers to answer 800 ticks", diagnostics=pipeline.worker_logs,
        )  # fmt: skip
        os.kill(victim.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim_partitions = set(assignment[victim.worker_id])
        bound_s = takeover_bound_s(pipeline)
        wait_for(
            lambda: victim_partitions <= set((worker_stats(survivor) or {}).get("assigned_partitions", [])),
            bound_s + 60, "the survivor to take over the dead worker's partitions", diagnostics=pipeline.worker_logs,
        )  # fmt: skip
        took_over_s = time.monotonic() - killed_at
        before = (worker_stats(survivor) or {})["predictions_out"]
        wait_for(
            lambda: (worker_stats(survivor) or {})["predictions_out"] > before + 500,
            60,
            "work to go on",
            diagnostics=pipeline.worker_logs,
        )
        sent = feed.stop()
    wait_until_every_tick_answered(pipeline, sent, 120)
    answers, predictions = answers_once_stopped(pipeline, sent)
    print(f"takeover after kill -9: {took_over_s:.1f}s (bound {bound_s:.1f}s); {answers}")
    workers_by_symbol = check_every_tick_answered_and_state_continuous(answers, predictions)
    assert any(len(names) == 2 for names in workers_by_symbol.values()), "no symbol changed hands"
    assert took_over_s < bound_s, f"the survivor took {took_over_s:.1f}s to take over, more than {bound_s:.1f}s"


def test_tampered_and_foreign_snapshots_are_refused_without_crashing(pipeline: Pipeline) -> None:
    from tickcast.common.kafka import new_producer
    from tickcast.predictor.restore import read_latest

    worker = pipeline.start_workers(1)[0]
    wait_for_assignment(pipeline, [worker])
    publisher = pipeline.publisher()
    for i in range(300):
        publisher.publish(Tick("IBM", 180.0 + (i % 7) * 0.01, 1.0, START_MS + i))
    assert publisher.close() == 0
    wait_for(
        lambda: (worker_stats(worker) or {}).get("snapshots_written", 0) > 0,
        60,
        "a snapshot",
        diagnostics=pipeline.worker_logs,
    )
    pipeline.stop()

    # Someone writes into the snapshot topic: IBM's real snapshot with one payload byte changed, IBM's genuine
    # snapshot under another symbol's key (a replay), and garbage.
    snapshots_topic = f"predictor-{pipeline.unique}-snapshots"
    latest = read_latest(pipeline.kafka, snapshots_topic, range(pipeline.partitions), 30)
    genuine = next(records[b"IBM"] for records in latest.values() if b"IBM" in records)
    middle = len(genuine) // 2
    tampered = genuine[:middle] + bytes([genuine[middle] ^ 0x01]) + genuine[middle + 1 :]
    producer = new_producer(pipeline.kafka)
    producer.produce(snapshots_topic, key=b"IBM", value=tampered)
    producer.produce(snapshots_topic, key=b"AIG", value=b"\x00\x00\x00\x00\x03not-avro-at-all")
    producer.produce(snapshots_topic, key=b"KO", value=b"pickle me")
    producer.produce(snapshots_topic, key=b"MSFT", value=genuine)
    assert producer.flush(30) == 0

    pipeline.pool = None
    replacement = pipeline.start_workers(1)[0]
    wait_for_assignment(pipeline, [replacement])  # /stats lists partitions once their state is restored
    stats = worker_stats(replacement)
    assert stats is not None, "no /stats"
    refused = stats["snapshots_refused"]
    # AIG and KO have nothing but garbage. IBM's tampered record came last, but an unverifiable record never
    # displaces a signed one (restore keeps the most current *verified* snapshot): the genuine state is loaded.
    assert refused.get("undecodable", 0) == 2 and refused.get("bad_signature", 0) == 0, refused
    assert refused.get("misplaced", 0) == 1, refused  # IBM's state under MSFT's key
    assert stats["restored_symbols"] == 1, "IBM's genuine state was not loaded"
    publisher = pipeline.publisher()
    publisher.publish(Tick("IBM", 181.0, 1.0, START_MS + 10_000))
    assert publisher.close() == 0
    wait_for(
        lambda: (worker_stats(replacement) or {}).get("predictions_out", 0) >= 1,
        60,
        "a prediction",
        diagnostics=pipeline.worker_logs,
    )
    assert replacement.alive
    assert "snapshot_refused" in replacement.log_path.read_text()


@pytest.mark.long
def test_a_zombie_worker_never_rolls_state_back(pipeline: Pipeline) -> None:
    """SIGSTOP a worker past its session timeout, let the survivor take over, then SIGCONT the zombie.

    The zombie wakes up believing it still owns its partitions and, when it hears it was dropped,
    would checkpoint the state it had when it stalled: older than what the survivor since saved and
    committed. The feed is paused before the zombie wakes, so the survivor has nothing newer to write
    at that rebalance and a stale write would be the last one on the snapshots topic.
    """
    workers = pipeline.start_workers(2)
    assignment = wait_for_assignment(pipeline, workers)
    zombie, survivor = workers
    publisher = pipeline.publisher()
    with SteadyFeed(publisher, symbols=24, rate=250) as feed:
        wait_for(
            lambda: all((worker_stats(w) or {}).get("predictions_out", 0) > 800 for w in workers),
            90, "both workers to answer 800 ticks", diagnostics=pipeline.worker_logs,
        )  # fmt: skip
        os.kill(zombie.process.pid, signal.SIGSTOP)
        try:
            zombie_partitions = set(assignment[zombie.worker_id])
            wait_for(
                lambda: zombie_partitions <= set((worker_stats(survivor) or {}).get("assigned_partitions", [])),
                takeover_bound_s(pipeline) + 60, "the survivor to take over the stalled worker's partitions",
                diagnostics=pipeline.worker_logs,
            )  # fmt: skip
            before = (worker_stats(survivor) or {})["predictions_out"]
            wait_for(
                lambda: (worker_stats(survivor) or {})["predictions_out"] > before + 1500,
                60, "the survivor to learn well past the zombie's state", diagnostics=pipeline.worker_logs,
            )  # fmt: skip
            first_sent = feed.stop()
            wait_until_every_tick_answered(pipeline, first_sent, 120)
            # The survivor's idle timer checkpoints within a second (TICKCAST_SNAPSHOT_EVERY_S=1): once its count
            # of snapshots written holds still over two such periods, everything it processed is saved.
            seen: list[int] = []

            def snapshots_settled() -> bool:
                seen.append((worker_stats(survivor) or {}).get("snapshots_written", -1))
                return len(seen) > 1 and seen[-1] == seen[-2] > 0

            wait_for(
                snapshots_settled, 30, "the survivor's snapshots to settle", diagnostics=pipeline.worker_logs,
                interval_s=2.5,
            )  # fmt: skip
        finally:
            os.kill(zombie.process.pid, signal.SIGCONT)
    assignment = wait_for_assignment(pipeline, workers, timeout_s=takeover_bound_s(pipeline) + 60)
    assert all(assignment.values()), f"the zombie did not rejoin: {assignment}"
    zombie_stats = worker_stats(zombie) or {}
    with SteadyFeed(pipeline.publisher(), symbols=24, rate=250) as feed:
        wait_for(
            lambda: all((worker_stats(w) or {}).get("predictions_out", 0) > 200 for w in workers),
            90, "both workers to answer again", diagnostics=pipeline.worker_logs,
        )  # fmt: skip
        sent = first_sent + feed.stop()
    wait_until_every_tick_answered(pipeline, sent, 120)
    answers, predictions = answers_once_stopped(pipeline, sent)
    print(f"zombie: {answers}; zombie's /stats after rejoining: {zombie_stats.get('checkpoints_fenced')} fenced")
    check_every_tick_answered_and_state_continuous(answers, predictions)


def test_a_rolling_deploy_between_the_two_fetch_paths_answers_every_tick_once(pipeline: Pipeline) -> None:
    # The previous release fetched the ticks with aiokafka and subscribed to Faust's leader topic; this one fetches
    # them with librdkafka and does not. During a rolling deploy both kinds share the group (Faust's assignor
    # assigns each topic among the members subscribed to it): partitions move both ways, at commits.
    old = pipeline.start_workers(1, TICKCAST_LIBRDKAFKA_FETCH="false")[0]
    wait_for_assignment(pipeline, [old])
    with SteadyFeed(pipeline.publisher(), symbols=24, rate=250) as feed:
        wait_for(
            lambda: (worker_stats(old) or {}).get("predictions_out", 0) > 500,
            90, "the old worker to answer 500 ticks", diagnostics=pipeline.worker_logs,
        )  # fmt: skip
        new = pipeline.start_workers(1)[0]
        wait_for_assignment(pipeline, [old, new])
        wait_for(
            lambda: (worker_stats(new) or {}).get("predictions_out", 0) > 300,
            90, "the new worker to answer 300 ticks", diagnostics=pipeline.worker_logs,
        )  # fmt: skip
        fetched_by = {w.worker_id: (worker_stats(w) or {}).get("ticks_fetched_by") for w in (old, new)}
        assert fetched_by == {old.worker_id: "aiokafka", new.worker_id: "librdkafka"}, fetched_by
        assert pipeline.pool is not None
        pipeline.pool.stop_one(old)
        wait_for_assignment(pipeline, [new])
        before = (worker_stats(new) or {})["predictions_out"]
        wait_for(
            lambda: (worker_stats(new) or {})["predictions_out"] > before + 500,
            60, "the new worker to go on alone", diagnostics=pipeline.worker_logs,
        )  # fmt: skip
        sent = feed.stop()
    wait_until_every_tick_answered(pipeline, sent, 120)
    answers, predictions = answers_once_stopped(pipeline, sent)
    workers_by_symbol = check_every_tick_answered_and_state_continuous(answers, predictions)
    assert not answers.repeated, f"partitions moved at commits, yet ticks were answered twice: {answers}"
    assert any(len(names) == 2 for names in workers_by_symbol.values()), "no symbol changed hands"
