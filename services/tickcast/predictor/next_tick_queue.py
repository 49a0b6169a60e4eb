"""The next-tick horizon's label queue: its one pending forecast kept as it was served, not packed.

On horizon ``1t`` each tick labels the forecast of the tick before and enqueues its own, so between two ticks
the queue holds one forecast. :class:`~tickcast.predictor.delayed_labels.LabelQueue` packs it into an array
at :meth:`~NextTickQueue.offer` and unpacks it into a new dict at :meth:`~NextTickQueue.labels`, every tick.
:class:`NextTickQueue` keeps that one forecast as a tuple holding the served features dict instead (~150 bytes
more per symbol), with the same semantics: anything else (a second entry, a read of :attr:`pending`) goes
through the general queue's code, on its packed storage.

Snapshots hold the general queue (see :meth:`NextTickQueue.general`): any worker reads them, and a restored
next-tick queue becomes a :class:`NextTickQueue` again (:func:`fitted`).
"""

from __future__ import annotations

from typing import Any

from tickcast.predictor.delayed_labels import DEFAULT_CAPACITY, LabelQueue, PendingForecast, ScoredLabel
from tickcast.predictor.horizons import Horizon, parse_horizon

#: The horizon a :class:`NextTickQueue` serves.
NEXT_TICK = parse_horizon("1t")
_new_tuple = tuple.__new__

#: The unpacked entry: due (tick count), made at (ms), weight, log price, forecast, half-width, features, challengers.
Entry = tuple[int, int, int, float, float, float, dict[str, float], dict[str, float] | None]


class NextTickQueue(LabelQueue):
    """A :class:`LabelQueue` for horizon ``1t`` whose only pending forecast is not packed.

    >>> q = NextTickQueue(NEXT_TICK)
    >>> q.offer(10, 1, 0.0, {"r1_bps": 2.0}, 0.5, 0.0), q.due_count(20, 1), q.due_count(20, 2), q.depth
    (True, 0, 1, 1)
    >>> [(label.features, round(label.target_bps, 6), label.delay_ms) for label in q.labels(1, 1e-4, 20)]
    [({'r1_bps': 2.0}, 1.0, 10)]
    >>> q.pop(1); q.depth, q.scored
    (0, 1)
    """

    __slots__ = ("_entry",)

    def __init__(self, horizon: Horizon = NEXT_TICK, capacity: int = DEFAULT_CAPACITY) -> None:
        super().__init__(horizon, capacity)
        # The one pending forecast when it is the only one (the packed storage is then empty), else None.
        self._entry: Entry | None = None

    def offer(
        self,
        time_ms: int,
        tick_count: int,
        log_price: float,
        features: dict[str, float],
        forecast_bps: float,
        half_width_bps: float,
    ) -> bool:
        last = self.last_offered_ms
        if self._entry is not None or self._layouts or (last is not None and time_ms < last):
            # Not an empty queue, or a tick whose time went back (skipped): the general rules, on packed entries.
            self._pack()
            return super().offer(time_ms, tick_count, log_price, features, forecast_bps, half_width_bps)
        weight = self.unsampled + 1
        self._entry = (tick_count + 1, time_ms, weight, log_price, forecast_bps, half_width_bps, features, None)
        self.unsampled = 0
        self.last_offered_ms = time_ms
        self.enqueued += 1
        return True

    def attach_challengers(self, forecasts: dict[str, float] | None) -> None:
        entry = self._entry
        if entry is None or forecasts is None:
            super().attach_challengers(forecasts)
        else:
            # A copy, as packing made one: the caller's dict may change after.
            self._entry = (*entry[:7], dict(forecasts))

    def due_count(self, time_ms: int, tick_count: int) -> int:
        entry = self._entry
        if entry is None:
            return super().due_count(time_ms, tick_count)
        return 1 if entry[0] <= tick_count else 0

    def labels(self, count: int, log_price: float, time_ms: int) -> list[ScoredLabel]:
        entry = self._entry
        if entry is None or count < 1:
            return super().labels(count, log_price, time_ms)
        _, made_at, weight, entry_log_price, forecast, half_width, features, challengers = entry
        # The fields in order, straight to tuple.__new__, as LabelQueue.labels builds them.
        label = (
            self.horizon,
            features,
            1e4 * (log_price - entry_log_price),
            forecast,
            half_width,
            time_ms - made_at,
            weight,
            challengers,
        )
        return [_new_tuple(ScoredLabel, label)]

    def pop(self, count: int) -> None:
        if self._entry is None or count < 1:
            super().pop(count)
        else:
            self._entry = None
            self.scored += count

    def drop_all(self) -> int:
        dropped = self._entry is not None
        self._entry = None
        self.dropped_gap += dropped
        return super().drop_all() + dropped

    @property
    def depth(self) -> int:
        return len(self._layouts) + (self._entry is not None)

    @property
    def pending(self) -> list[PendingForecast]:
        entry = self._entry
        return super().pending if entry is None else [self._pending(entry)]

    def peek(self, index: int) -> PendingForecast:
        entry = self._entry
        if entry is None or index not in (0, -1):
            return super().peek(index)
        return self._pending(entry)

    def general(self) -> LabelQueue:
        """The same queue as a :class:`LabelQueue` (what a snapshot holds); this one is left as it was."""
        queue = LabelQueue(self.horizon, self.capacity)
        queue.__setstate__(self.__getstate__())
        return queue

    def __getstate__(self) -> list[Any]:
        return LabelQueue.__getstate__(self)  # its pending forecasts through the pending property

    def __setstate__(self, values: list[Any]) -> None:
        self._entry = None
        LabelQueue.__setstate__(self, values)

    @staticmethod
    def _pending(entry: Entry) -> PendingForecast:
        due, made_at, weight, log_price, forecast, half_width, features, challengers = entry
        return PendingForecast.of(due, made_at, log_price, features, forecast, half_width, weight, challengers)

    def _pack(self) -> None:
        entry = self._entry
        if entry is not None:
            self._entry = None
            self._append(self._pending(entry))


def fitted(queue: LabelQueue) -> LabelQueue:
    """``queue`` as this worker runs it: a next-tick one as a :class:`NextTickQueue` (same state), others as is."""
    if type(queue) is not LabelQueue or queue.horizon != NEXT_TICK:
        return queue
    fit = NextTickQueue(queue.horizon, queue.capacity)
    fit.__setstate__(queue.__getstate__())
    return fit


def general(queue: LabelQueue) -> LabelQueue:
    """``queue`` as a snapshot holds it: a :class:`LabelQueue` (a worker without :class:`NextTickQueue` reads it)."""
    return queue.general() if isinstance(queue, NextTickQueue) else queue
