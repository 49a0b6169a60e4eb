"""After a fault: what became of every tick, read to the ends of the ticks, predictions and dead-letter topics.

The promises checked (README, "Failure modes"): every valid tick has at least one prediction, every bad one
is in the dead-letter topic, and a symbol's ``ticks_learned`` never goes backwards nor skips a tick in
source-offset order (a skip is a tick learned twice or state lost; backwards is a stale state restored).
Read it after the writers stopped, so late duplicates are counted too (see :mod:`~tickcast.testing.drain`).
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import TICK_SCHEMA_FILE
from tickcast.common.errors import Rejected
from tickcast.common.records import Prediction
from tickcast.common.settings import CommonSettings
from tickcast.common.validation import TickLimits
from tickcast.ops.dlq import read_dead_letters
from tickcast.predictor.intake import read_tick
from tickcast.predictor.settings import PredictorSettings
from tickcast.subscriber.reader import PredictionReader
from tickcast.subscriber.settings import SubscriberSettings
from tickcast.testing.drain import TickId, TopicRecord, read_predictions_to_end, read_to_end
from tickcast.testing.waiting import wait_for

#: The worker's default record limit: a tick above it is bad (``oversized``).
DEFAULT_MAX_RECORD_BYTES: int = PredictorSettings.model_fields["max_record_bytes"].default


def learning_breaks(predictions: Iterable[Prediction]) -> list[str]:
    """Where a symbol's ``ticks_learned`` went backwards or skipped, in source-offset order; one copy per tick.

    A step of 0 is allowed (an outlier is not learned from), so is a first value of 0 or 1.

    >>> from types import SimpleNamespace as P
    >>> def p(offset, learned): return P(symbol="SPY", source_partition=0, source_offset=offset, ticks_learned=learned)
    >>> learning_breaks([p(0, 0), p(1, 1), p(2, 1), p(3, 2)])
    []
    >>> learning_breaks([p(0, 0), p(1, 1), p(2, 3), p(3, 1)])
    ['SPY: ticks_learned 1 -> 3 at offset 2', 'SPY: ticks_learned 3 -> 1 at offset 3']
    """
    first_copy: dict[tuple[int, int], Prediction] = {}
    for prediction in predictions:
        first_copy.setdefault((prediction.source_partition, prediction.source_offset), prediction)
    series: dict[str, list[Prediction]] = defaultdict(list)
    for _, prediction in sorted(first_copy.items()):
        series[prediction.symbol].append(prediction)
    breaks = []
    for symbol, answered in series.items():
        if answered[0].ticks_learned > 1:
            breaks.append(f"{symbol}: first prediction has ticks_learned {answered[0].ticks_learned}")
        for before, after in itertools.pairwise(answered):
            if not 0 <= after.ticks_learned - before.ticks_learned <= 1:
                breaks.append(
                    f"{symbol}: ticks_learned {before.ticks_learned} -> {after.ticks_learned} "
                    f"at offset {after.source_offset}"
                )
    return breaks


def classify(
    records: Iterable[TopicRecord], topic: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> tuple[set[TickId], set[TickId]]:
    """(valid, bad) lineages of tick records, judged by the worker's own intake rules."""
    codec = AvroCodec(open_schema_store(None), f"{topic}-value", load_schema(TICK_SCHEMA_FILE))
    limits, now_ms = TickLimits(), time.time_ns() // 1_000_000
    valid: set[TickId] = set()
    bad: set[TickId] = set()
    for record in records:
        try:
            read_tick(record.key, record.value, codec, now_ms, limits, max_record_bytes)
        except Rejected:
            bad.add((topic, record.partition, record.offset))
        else:
            valid.add((topic, record.partition, record.offset))
    return valid, bad


@dataclass(frozen=True)
class Ledger:
    """Every tick of a run and what answered it."""

    valid: frozenset[TickId]
    bad: frozenset[TickId]
    predicted: Mapping[TickId, int]
    """Predictions per tick (more than 1: a replay after a failover or a zombie's late write)."""
    dead_lettered: Mapping[TickId, str]
    """Reason per tick in the dead-letter topic."""
    breaks: tuple[str, ...]

    @property
    def unpredicted(self) -> frozenset[TickId]:
        return frozenset(tick for tick in self.valid if tick not in self.predicted)

    @property
    def lost(self) -> frozenset[TickId]:
        """Valid ticks answered neither by a prediction nor by a dead letter: silently dropped."""
        return frozenset(tick for tick in self.unpredicted if tick not in self.dead_lettered)

    @property
    def bad_not_dead_lettered(self) -> frozenset[TickId]:
        return frozenset(tick for tick in self.bad if tick not in self.dead_lettered)

    @property
    def duplicates(self) -> int:
        """Predictions beyond the first of each tick."""
        return sum(count - 1 for count in self.predicted.values())

    def check(self, refusals_allowed: bool = False) -> None:
        """Raise AssertionError unless every promise holds.

        ``refusals_allowed``: a valid tick may be answered by a dead letter instead (a flood of new symbols
        beyond the worker's cap may be refused); it must still never be lost.
        """
        problems = []
        missing = self.lost if refusals_allowed else self.unpredicted
        if missing:
            problems.append(f"{len(missing)} valid ticks without a prediction, e.g. {sorted(missing)[:5]}")
        if self.bad_not_dead_lettered:
            some = sorted(self.bad_not_dead_lettered)[:5]
            problems.append(f"{len(self.bad_not_dead_lettered)} bad ticks not in the dead-letter topic, e.g. {some}")
        if self.breaks:
            problems.append(f"{len(self.breaks)} learning breaks, e.g. {list(self.breaks[:5])}")
        if problems:
            raise AssertionError(f"{self}\n" + "\n".join(problems))

    def __str__(self) -> str:
        return (
            f"ticks: {len(self.valid)} valid, {len(self.bad)} bad; lost {len(self.lost)}; "
            f"unpredicted {len(self.unpredicted)}; duplicates {self.duplicates}; "
            f"dead letters {len(self.dead_lettered)} {dict(Counter(self.dead_lettered.values()))}; "
            f"learning breaks {len(self.breaks)}"
        )


def read_ledger(
    settings: CommonSettings, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, timeout_s: float = 120.0
) -> Ledger:
    """Read the ticks, predictions and dead letters of ``settings``' topics to their ends and match them up."""
    topic = settings.ticks_topic
    valid, bad = classify(read_to_end(settings, topic, timeout_s), topic, max_record_bytes)
    predictions = read_predictions_to_end(settings, settings.predictions_topic, timeout_s=timeout_s)
    predicted = Counter((p.source_topic, p.source_partition, p.source_offset) for p in predictions)
    dead_lettered: dict[TickId, str] = {}
    for letter in read_dead_letters(settings, timeout_s):
        headers = letter.headers
        if "source.partition" in headers and "source.offset" in headers:
            lineage = (
                headers.get("source.topic", topic),
                int(headers["source.partition"]),
                int(headers["source.offset"]),
            )
            dead_lettered[lineage] = letter.reason
    return Ledger(frozenset(valid), frozenset(bad), predicted, dead_lettered, tuple(learning_breaks(predictions)))


def wait_until_answered(
    settings: CommonSettings,
    expected: int,
    timeout_s: float,
    check: Callable[[], None] | None = None,
    diagnostics: Callable[[], str] | None = None,
) -> float:
    """Until ``expected`` distinct ticks have a prediction or a dead letter; return the seconds it took.

    Call before stopping the workers: a tick nobody answered yet is not lost while a worker still owns it.
    """
    reader = PredictionReader(
        SubscriberSettings(**settings.model_dump(include=set(CommonSettings.model_fields))), dead_letters=True
    )
    answered: set[tuple[int, int]] = set()

    def enough() -> bool:
        for received in reader.poll(timeout_s=0.2, max_records=5000):
            if received.prediction is not None:
                answered.add((received.prediction.source_partition, received.prediction.source_offset))
            elif received.dead_letter is not None:
                letter = received.dead_letter
                if "tickcast.source.offset" in letter:
                    answered.add((int(letter["tickcast.source.partition"]), int(letter["tickcast.source.offset"])))
        return len(answered) >= expected

    def explain() -> str:
        return f"{len(answered)} of {expected} ticks answered" + (f"\n{diagnostics()}" if diagnostics else "")

    try:
        return wait_for(
            enough, timeout_s, f"{expected} ticks to be answered", check=check, diagnostics=explain, interval_s=0
        )
    finally:
        reader.close()


def healthy(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """True when the worker's ``/health`` answers 200 with status ok."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=timeout_s) as response:  # nosec B310 # http
            return response.status == 200 and json.loads(response.read()).get("status") == "ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return False
