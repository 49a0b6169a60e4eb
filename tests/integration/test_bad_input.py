"""Bad input never stops the stream: every bad record lands in the dead-letter topic with its reason."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import require_trades_file
from tickcast.common.contracts import frame
from tickcast.common.kafka import new_producer
from tickcast.common.records import Tick
from tickcast.common.settings import CommonSettings
from tickcast.ops.dlq import REPLAYED_FROM, read_dead_letters
from tickcast.ops.topic_reader import read_whole_topic
from tickcast.testing.pipeline import Pipeline
from tickcast.testing.reading import collect, predictions_of
from tickcast.testing.stats import worker_stats

pytestmark = pytest.mark.integration

NOW_MS = 1_700_000_000_000


def run_cli(pipeline: Pipeline, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickcast", *args],
        env=pipeline.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_corpus_of_bad_records_goes_to_the_dead_letter_topic_and_the_worker_carries_on(pipeline: Pipeline) -> None:
    worker = pipeline.start_workers(1)[0]
    publisher = pipeline.publisher()
    codec = publisher.codec
    encode = codec.encode

    def tick(symbol: str = "IBM", price: float = 180.0, size: float = 1.0, event_time: int = NOW_MS) -> bytes:
        return encode(Tick(symbol, price, size, event_time).to_avro())

    good = encode(Tick("IBM", 180.0, 1.0, NOW_MS).to_avro())
    bad: list[tuple[bytes | None, bytes | None, str]] = [
        (b"IBM", b"\x01" + good[1:], "bad_magic_byte"),
        (b"IBM", frame(999, good[5:]), "unknown_schema_id"),
        (b"IBM", good[:9], "truncated"),
        (b"IBM", frame(1, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), "bad_avro"),
        (b"IBM", b"", "empty_value"),
        (None, good, "missing_key"),
        (b"SPY", good, "key_symbol_mismatch"),
        (b"IBM", good + b"\x00" * 70_000, "oversized"),
        (b"IBM", tick(price=math.nan), "bad_price"),
        (b"IBM", tick(price=math.inf), "bad_price"),
        (b"IBM", tick(price=0.0), "bad_price"),
        (b"IBM", tick(price=-3.0), "bad_price"),
        (b"IBM", tick(size=-1.0), "bad_size"),
        (b"ibm", tick(symbol="ibm"), "bad_symbol"),
        (b"A" * 40, tick(symbol="A" * 40), "bad_symbol"),
        (b"IBM", tick(event_time=4_000_000_000_000), "event_time_in_future"),
        (b"IBM", tick(event_time=1_000), "event_time_too_old"),
    ]
    good_count = 0
    for i, (key, value, _) in enumerate(bad):
        publisher.publish(Tick("IBM", 180.0 + i * 0.01, 1.0, NOW_MS + 10 * i))
        good_count += 1
        publisher.publish_raw(key, value)
    # Same-timestamp trades and time going backwards are accepted (the latter flagged).
    publisher.publish(Tick("IBM", 181.0, 1.0, NOW_MS + 500))
    publisher.publish(Tick("IBM", 181.0, 2.0, NOW_MS + 500))
    publisher.publish(Tick("IBM", 181.1, 2.0, NOW_MS + 100))
    good_count += 3
    assert publisher.close() == 0

    reader = pipeline.reader(dead_letters=True)
    received = collect(reader, good_count + len(bad), 90, "predictions and dead letters", pipeline)
    reader.close()
    predictions = predictions_of([r for r in received if r.dead_letter is None])
    letters = [r.dead_letter for r in received if r.dead_letter is not None]
    assert len(predictions) == good_count
    assert sorted(letter["tickcast.reason"] for letter in letters) == sorted(reason for _, _, reason in bad)
    for letter in letters:
        assert letter["tickcast.message"], "a dead letter without a human message"
        assert letter["tickcast.source.topic"] == pipeline.ticks_topic
        assert int(letter["tickcast.source.offset"]) >= 0
    assert "time_regressed" in predictions[-1].flags

    # Original bytes are kept untouched, and the worker's own counters agree.
    stored = read_dead_letters(CommonSettings(**pipeline.settings_kwargs()))
    originals = {(key, value) for key, value, _ in bad}
    assert {(letter.key, letter.value or b"") for letter in stored} == {(k, v or b"") for k, v in originals}
    stats = worker_stats(worker)
    assert stats is not None and sum(stats["dead_letters"].values()) == len(bad)
    assert worker.alive


def test_dlq_cli_summarises_and_replays(pipeline: Pipeline) -> None:
    pipeline.start_workers(1)
    publisher = pipeline.publisher()
    good = publisher.codec.encode(Tick("AIG", 50.0, 1.0, NOW_MS).to_avro())
    publisher.publish_raw(b"AIG", b"\x07garbage")
    publisher.publish_raw(b"MSFT", good)  # key disagrees with the symbol
    assert publisher.close() == 0
    reader = pipeline.reader(dead_letters=True)
    collect(reader, 2, 90, "dead letters", pipeline)

    summary = run_cli(pipeline, "dlq", "summary")
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout.splitlines() == ["bad_magic_byte=1", "key_symbol_mismatch=1", "total=2"]

    listing = run_cli(pipeline, "dlq", "list", "--json")
    assert listing.returncode == 0 and listing.stdout.count('"reason"') == 2

    replay = run_cli(pipeline, "dlq", "replay", "--reason", "key_symbol_mismatch")
    assert replay.returncode == 0 and "replayed=1" in replay.stdout, replay.stdout + replay.stderr
    again = collect(reader, 1, 90, "the replayed tick's dead letter", pipeline)
    reader.close()
    assert again[0].dead_letter is not None
    assert again[0].dead_letter["tickcast.reason"] == "key_symbol_mismatch"


def test_file_replay_reports_bad_rows_and_sends_the_good_ones(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.start_workers(1)
    csv_file = tmp_path / "ticks.csv"
    csv_file.write_text(
        "ts_et,symbol,price,size\n"
        "2013-10-07T09:30:00.001,SPY,167.41,100\n"
        "2013-10-07T09:30:00.002,SPY,abc,100\n"
        "2013-10-07T09:30:00.003,SPY,167.42,-5\n"
        "2013-10-07T09:30:00.004,SPY,167.43,200\n"
    )
    result = run_cli(pipeline, "produce", "file", str(csv_file), "--timezone", "America/New_York")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("sent=2 skipped=2")
    assert "ticks.csv:3" in result.stderr and "'price'" in result.stderr
    reader = pipeline.reader()
    predictions = predictions_of(collect(reader, 2, 90, "predictions", pipeline))
    reader.close()
    assert [p.last_price for p in predictions] == [167.41, 167.43]
    assert predictions[0].event_time == 1_381_152_600_001  # 09:30 New York is 13:30 UTC in October

    stop_early = run_cli(pipeline, "produce", "file", str(csv_file), "--on-error", "stop")
    assert stop_early.returncode == 1 and "sent=1" in stop_early.stdout


def test_a_file_cut_short_says_how_many_ticks_went_out_before_it_ends_with_the_error(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    rows = "".join(
        f"2013-10-07T09:30:{i // 1000:02d}.{i % 1000:03d},SPY,{100 + i % 7 / 100:.2f},{i}\n" for i in range(3000)
    )
    whole = gzip.compress(("ts_et,symbol,price,size\n" + rows).encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])  # a download or copy that stopped half-way
    env = {**pipeline.env(), "TICKCAST_LOG_FORMAT": "console"}
    result = subprocess.run(
        [sys.executable, "-m", "tickcast", "produce", "file", str(cut), "--on-error", "stop"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cut.csv.gz: read failed after line" in result.stderr
    assert result.stdout.startswith("sent="), f"no summary line: {result.stdout!r}"
    sent = int(result.stdout.split()[0].removeprefix("sent="))
    assert 0 < sent < 3000, f"the ticks sent before the cut, in the summary line: {result.stdout!r}"

    bad = tmp_path / "bad.csv"
    bad.write_text("ts_et,symbol,price,size\n2013-10-07T09:30:00.001,SPY,-1,100\n")
    skipped = subprocess.run(
        [sys.executable, "-m", "tickcast", "produce", "file", str(bad)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert skipped.returncode == 0 and "skipped={'bad_price': 1}" in skipped.stderr, skipped.stderr


def test_real_trades_replay_end_to_end(pipeline: Pipeline) -> None:
    trades = require_trades_file()
    pipeline.start_workers(1)
    count = 3000
    result = run_cli(
        pipeline, "produce", "file", str(trades), "--timezone", "America/New_York", "--limit", str(count),
        "--venue-col", "exchange", "--condition-col", "condition",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"sent={count}")
    reader = pipeline.reader(dead_letters=True)
    received = collect(reader, count, 120, "answers to real trades", pipeline)
    reader.close()
    predictions = predictions_of([r for r in received if r.dead_letter is None])
    assert len(predictions) + sum(r.dead_letter is not None for r in received) == count
    assert len(predictions) == count, "real trades that pass the producer's validation must all be predicted"
    assert all(math.isfinite(p.predicted_return_bps) for p in predictions)
    assert {p.symbol for p in predictions} <= {"SPY", "BAC", "AIG", "IBM"}


def test_configuration_errors_are_one_line(pipeline: Pipeline, tmp_path: Path) -> None:
    env = {**pipeline.env(), "TICKCAST_PARTITIONS": "many"}
    bad = subprocess.run(
        [sys.executable, "-m", "tickcast", "topics", "create"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "TICKCAST_PARTITIONS" in bad.stderr and "Traceback" not in bad.stderr

    unreachable = {**pipeline.env(), "TICKCAST_BOOTSTRAP_SERVERS": "127.0.0.1:9", "TICKCAST_CONNECT_TIMEOUT_S": "2"}
    down = subprocess.run(
        [sys.executable, "-m", "tickcast", "produce", "synthetic", "--count", "1"],
        env=unreachable, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert down.returncode == 1 and "did not answer" in down.stderr and "Traceback" not in down.stderr

    missing = run_cli(pipeline, "produce", "file", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "nope.csv" in missing.stderr and "Traceback" not in missing.stderr


def test_dlq_replay_sends_each_letter_once_however_often_it_is_run(pipeline: Pipeline) -> None:
    # Letters as a worker writes them, on this run's own dead-letter topic; no worker, so nothing is refused again.
    producer = new_producer(pipeline.kafka)
    codec = pipeline.publisher().codec
    letters = [Tick("AIG", 50.0 + i, 1.0, NOW_MS + i) for i in range(3)]
    for i, tick in enumerate(letters):
        headers = {"tickcast.reason": "bad_price" if i < 2 else "bad_size", "tickcast.source.topic": "ticks",
                   "tickcast.source.partition": "0", "tickcast.source.offset": str(100 + i)}  # fmt: skip
        producer.produce(pipeline.dlq_topic, value=codec.encode(tick.to_avro()), key=b"AIG", headers=headers)
    assert producer.flush(30) == 0

    def replayed_from() -> Counter[str]:
        """Ticks on the ticks topic by the letter they were replayed from (the topic is read to its end)."""
        return Counter(
            dict(message.headers() or [])[REPLAYED_FROM].decode()
            for message in read_whole_topic(CommonSettings(**pipeline.settings_kwargs()), pipeline.ticks_topic, "t")
        )

    first = run_cli(pipeline, "dlq", "replay", "--reason", "bad_price")
    assert first.returncode == 0 and "replayed=2" in first.stdout, first.stdout + first.stderr
    # An operator's retry after a timeout, or a script run again.
    second = run_cli(pipeline, "dlq", "replay", "--reason", "bad_price")
    assert second.returncode == 0, second.stdout + second.stderr
    sent = replayed_from()
    assert sorted(sent.values()) == [1, 1], f"a second replay sent letters again: {sent}; said {second.stdout}"
    assert "replayed=0" in second.stdout and "skipped 2 already replayed at" in second.stdout, second.stdout

    again = run_cli(pipeline, "dlq", "replay", "--reason", "bad_price", "--again")
    assert again.returncode == 0 and "replayed=2" in again.stdout, again.stdout + again.stderr
    assert sorted(replayed_from().values()) == [2, 2], "--again did not send the letters again"


def test_subscribe_dead_letters_in_a_group_commits_only_what_it_printed(pipeline: Pipeline, unique: str) -> None:
    producer = new_producer(pipeline.kafka)
    for i in range(3):  # one batch: the subscriber's first fetch returns all three
        headers = {"tickcast.reason": "bad_price", "tickcast.source.offset": str(100 + i)}
        producer.produce(pipeline.dlq_topic, value=b"x", key=b"AIG", partition=0, headers=headers)
    assert producer.flush(30) == 0
    env = {**pipeline.env(), "TICKCAST_SUBSCRIBER_GROUP_ID": f"tickcast-subscriber-{unique}"}

    def subscribe_one() -> str | None:
        """The source offset of the letter printed, None if none was (within the idle timeout)."""
        args = ["subscribe", "--dead-letters", "--from-beginning", "--count", "1", "--timeout", "20"]
        done = subprocess.run(
            [sys.executable, "-m", "tickcast", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return str(json.loads(done.stdout)["dead_letter"]["tickcast.source.offset"]) if done.stdout else None

    first = subscribe_one()
    assert first == "100", f"the group's first run printed {first}"
    second = subscribe_one()
    assert second == "101", (
        f"the group's second run printed the letter of source offset {second}, not 101: the first run, stopping "
        "after one, committed letters it fetched and never printed"
    )
