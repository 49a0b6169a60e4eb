"""What a client checks on every record: duplicates (by lineage), gaps in source offsets, stale symbols."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from tickcast.client.records import PredictionRecord

#: on_gap(source topic, source partition, first missing offset, next offset seen); for a gateway's reset,
#: on_gap(RESET_TOPIC, partition of the predictions topic, first missed offset, offset the stream goes on from)
GapCallback = Callable[[str, int, int, int], None]
#: The topic a reset's gap names: its offsets are the predictions topic's (a gateway names no topic).
RESET_TOPIC = "predictions"
#: on_stale(symbol, seconds since its last prediction was made (its predicted_at) or since the subscription started)
StaleCallback = Callable[[str, float], None]


@dataclass
class ClientStats:
    """Counters of one subscription; read them any time."""

    received: int = 0
    duplicates: int = 0
    gaps: int = 0
    missed_offsets: int = 0
    resets: int = 0
    reconnects: int = 0
    stale_reports: int = 0
    stale_symbols: set[str] = field(default_factory=set)


class Tracker:
    """Dedup by lineage, gap detection per source partition, staleness per symbol.

    A worker restart may repeat a partition's last predictions: each source partition's offsets only grow,
    so a lineage at or below the highest seen is a duplicate. Offsets skipped are a gap (a lost prediction,
    or a tick that went to the dead-letter topic instead); gaps are judged only where the client sees every
    record of the partition (``complete``), since a symbol filter hides the other symbols' offsets. Records of
    symbols outside ``symbols`` (a Kafka source reads the chosen symbols' whole partitions) count for duplicates
    and gaps only: they are not received, and never reported stale. A symbol is stale once its newest
    prediction was made (``predicted_at``, by the worker's clock) longer than ``stale_after_s`` ago.

    >>> gaps = []
    >>> tracker = Tracker(on_gap=lambda *gap: gaps.append(gap))
    >>> records = [_record("A", offset) for offset in (0, 1, 1, 4)]
    >>> [r.source_offset for r in records if tracker.accept(r, complete=True)]
    [0, 1, 4]
    >>> tracker.stats.duplicates, tracker.stats.missed_offsets, gaps
    (1, 2, [('ticks', 0, 2, 4)])
    """

    def __init__(
        self,
        symbols: Iterable[str] | None = None,
        stale_after_s: float = 10.0,
        on_gap: GapCallback | None = None,
        on_stale: StaleCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.stats = ClientStats()
        self._next: dict[tuple[str, int], int] = {}
        self._stale_after_s = stale_after_s
        self._on_gap = on_gap
        self._on_stale = on_stale
        self._clock = clock
        self._wall_clock = wall_clock
        self._wanted = frozenset(symbols) if symbols is not None else None
        # Predictions partitions whose next record's jump in source offsets is a reset's loss, reported already.
        self._reset: set[int] = set()
        started = clock()
        self._last_seen: dict[str, float] = dict.fromkeys(self._wanted or (), started)

    def accept(self, record: PredictionRecord, complete: bool) -> bool:
        """True if ``record`` is new and of a chosen symbol; count it, a duplicate, or the gap before it."""
        key = (record.source_topic, record.source_partition)
        expected = self._next.get(key)
        if expected is not None and record.source_offset < expected:
            self.stats.duplicates += 1
            return False
        # The first record of a partition after a reset skips the offsets whose loss the reset reported.
        reported = record.partition in self._reset
        if complete:
            self._reset.discard(record.partition)
        if complete and not reported and expected is not None and record.source_offset > expected:
            self.stats.gaps += 1
            self.stats.missed_offsets += record.source_offset - expected
            if self._on_gap is not None:
                self._on_gap(record.source_topic, record.source_partition, expected, record.source_offset)
        self._next[key] = record.source_offset + 1
        if self._wanted is not None and record.symbol not in self._wanted:
            return False
        self.stats.received += 1
        # Fresh as of when it was made, not when it came: a source behind by a minute (a lagging gateway or
        # consumer, a replay) delivers minute-old forecasts, which are stale however recently they arrived.
        now = self._clock()
        made = now - max(0.0, self._wall_clock() - record.predicted_at / 1_000_000)
        self._last_seen[record.symbol] = made
        if now - made <= self._stale_after_s:
            self.stats.stale_symbols.discard(record.symbol)
        return True

    def reset(self, missed: Mapping[int, tuple[int, int]]) -> None:
        """The source said predictions were missed for good (a gateway's ``reset`` event; ``missed[partition] =
        (first, next)`` on the predictions topic): one gap per partition, through ``on_gap`` with
        :data:`RESET_TOPIC`. The jump in source offsets the next record of such a partition shows is that same
        loss, not another gap (nor counted in ``missed_offsets``: a filtered stream could not count it).

        >>> gaps = []
        >>> tracker = Tracker(on_gap=lambda *gap: gaps.append(gap))
        >>> tracker.accept(_record("A", 0), complete=True), tracker.reset({0: (1, 9)})
        (True, None)
        >>> tracker.accept(_record("A", 12), complete=True), tracker.accept(_record("A", 14), complete=True)
        (True, True)
        >>> tracker.stats.resets, tracker.stats.gaps, gaps
        (1, 2, [('predictions', 0, 1, 9), ('ticks', 0, 13, 14)])
        """
        self.stats.resets += 1
        for partition, (first, after) in sorted(missed.items()):
            self.stats.gaps += 1
            if self._on_gap is not None:
                self._on_gap(RESET_TOPIC, partition, first, after)
        self._reset.update(missed)

    def check_stale(self) -> list[str]:
        """Symbols that became stale since the last check (each reported once until it is fresh again)."""
        now, newly = self._clock(), []
        for symbol, seen in self._last_seen.items():
            if now - seen > self._stale_after_s and symbol not in self.stats.stale_symbols:
                self.stats.stale_symbols.add(symbol)
                self.stats.stale_reports += 1
                newly.append(symbol)
                if self._on_stale is not None:
                    self._on_stale(symbol, now - seen)
        return newly


def _record(symbol: str, source_offset: int) -> PredictionRecord:
    return PredictionRecord(
        symbol, 0, 1.0, 0.0, 1.0, 1, "READY", "m", "1", 0, "ticks", 0, source_offset, 0, 0, "w", None, (), 0, 0
    )
