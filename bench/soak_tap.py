"""Counting answers while a soak runs: distinct ticks answered and duplicates, in memory that stays small.

A tick's identity is its lineage (source partition, offset). Offsets of a partition are answered nearly in
order, so the tap keeps per partition the first offset not answered yet, plus the few answered beyond it:
memory is the out-of-order window, not the run's length.
"""

from __future__ import annotations

import threading
from collections import defaultdict

from tickcast.common.settings import CommonSettings
from tickcast.subscriber.reader import PredictionReader
from tickcast.subscriber.settings import SubscriberSettings


class Progress:
    """Distinct offsets seen per partition, and how many were seen again.

    >>> progress = Progress()
    >>> for offset in (0, 2, 1, 1, 3, 0):
    ...     progress.see(0, offset)
    >>> progress.distinct, progress.duplicates, progress.next_offset[0], dict(progress.ahead)
    (4, 2, 4, {0: set()})
    """

    def __init__(self) -> None:
        self.next_offset: defaultdict[int, int] = defaultdict(int)
        self.ahead: defaultdict[int, set[int]] = defaultdict(set)
        self.duplicates = 0
        self.distinct = 0

    def see(self, partition: int, offset: int) -> None:
        ahead = self.ahead[partition]
        if offset < self.next_offset[partition] or offset in ahead:
            self.duplicates += 1
            return
        self.distinct += 1
        ahead.add(offset)
        while self.next_offset[partition] in ahead:
            ahead.discard(self.next_offset[partition])
            self.next_offset[partition] += 1


class AnswerTap:
    """Reads the predictions topic from its start in a thread; ``answered`` and ``duplicates`` are live."""

    def __init__(self, settings: CommonSettings) -> None:
        fields = settings.model_dump(include=set(CommonSettings.model_fields))
        self._reader = PredictionReader(SubscriberSettings(**fields))
        self._progress = Progress()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="answer-tap", daemon=True)
        self.errors: list[str] = []

    @property
    def answered(self) -> int:
        return self._progress.distinct

    @property
    def duplicates(self) -> int:
        return self._progress.duplicates

    def _run(self) -> None:
        see = self._progress.see
        while not self._stop.is_set():
            for received in self._reader.poll(timeout_s=0.2, max_records=5000):
                if received.prediction is not None:
                    see(received.prediction.source_partition, received.prediction.source_offset)
                elif received.error:
                    self.errors.append(received.error)

    def start(self) -> AnswerTap:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._reader.close()
