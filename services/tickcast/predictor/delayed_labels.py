"""Forecasts waiting for their label: one bounded queue per symbol and horizon (River's delayed-label pattern).

**The label.** A forecast made at tick t (event time ``t_ms``, price ``p_t``) for a time horizon h is
labelled by the *first tick of the symbol at or after* ``t_ms + h``; for a tick horizon k, by the k-th tick
after t. The target is the log-return between the two trades, ``1e4 · ln(p_label / p_t)`` bps, and the
model learns it on the features it saw at t (kept in the queue), never on anything later.

**The bound.** A busy symbol (SPY peaks at hundreds of trades a second) cannot keep one entry per tick for
60 s. So a time horizon keeps at most ``capacity`` entries, and a forecast is only *enqueued* when it is at
least ``h / capacity`` of event time after the last one enqueued: the queue then never holds more than
``capacity``, whatever the tick rate. Forecasts in between are served (published) but not learned from or
scored; :attr:`LabelQueue.skipped` counts them. A tick horizon keeps every tick (k entries at most).
Each enqueued forecast carries a *weight*, the number of served forecasts it stands for (itself and those
skipped just before it), so the interval can be calibrated per served forecast, not per sampled one: busy
stretches, which are also the volatile ones, would otherwise be under-represented.

**The small API** other code may use (the issue 16 model selection reads it): :meth:`LabelQueue.offer` after a
forecast is served, :meth:`LabelQueue.due_count` + :meth:`LabelQueue.labels` (or :meth:`LabelQueue.peek` and
:meth:`LabelQueue.label` of one entry) + :meth:`LabelQueue.pop` when a tick arrives, :meth:`LabelQueue.drop_all`
at a gap (:meth:`LabelQueue.drop_made_after` after a time stamped ahead), and the :class:`ScoredLabel` each due
entry becomes: ``(horizon, features_at_t, target_bps, forecast_bps, ...)``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

from tickcast.predictor.horizons import Horizon
from tickcast.predictor.label_layout import Layout, plain_layout, shared_layout, shared_names, width_of
from tickcast.predictor.scored_label import ScoredLabel, new_scored_label

#: Pending forecasts kept per symbol and time horizon (see the module doc): 8 spaced over 60 s is one
#: learned label every 7.5 s at most, over 1 s one every 125 ms.
DEFAULT_CAPACITY = 8


class PendingForecast:
    """A served forecast, kept until its label tick arrives.

    Up to 24 of these per symbol at the default horizons, so they are packed: every number (the due time, the
    event time, the weight, the log price, the forecast, the half-width, the feature values, then the
    challengers' forecasts) in one ``array('d')``, against tuples of feature names and challenger slots shared
    by all. A dict and a float or int object per value made them a third of a symbol's memory, and the
    challengers' dict of the shortest horizon's entries ~0.25 KB each. The times and counts are exact as
    doubles (below 2**53), so the properties give back the ints served, and :attr:`features` and
    :attr:`challengers` rebuild dicts equal to the ones served (same keys, same order, same values).

    >>> entry = PendingForecast.of(5, 0, 0.0, {"r1_bps": 1.5, "ewm_fast_bps": -0.5}, 0.1, 2.0)
    >>> other = PendingForecast.of(6, 0, 0.0, {"r1_bps": 0.0, "ewm_fast_bps": 0.0}, 0.0, 0.0)
    >>> entry.features, entry.forecast_bps, entry.due, entry.feature_names is other.feature_names
    ({'r1_bps': 1.5, 'ewm_fast_bps': -0.5}, 0.1, 5, True)
    >>> entry.challengers = {"pa": 0.25}
    >>> entry.challengers, entry.features["ewm_fast_bps"], other.challengers
    ({'pa': 0.25}, -0.5, None)
    """

    __slots__ = ("challenger_slots", "feature_names", "numbers")

    feature_names: tuple[str, ...]
    """Shared by every entry with the same names (see :func:`shared_names`)."""
    numbers: array[float]
    """Due, made at, weight, log price, forecast (bps), half-width (bps), the feature values in
    :attr:`feature_names` order, then the challengers' forecasts in :attr:`challenger_slots` order."""
    challenger_slots: tuple[str, ...] | None
    """Model selection's challengers whose forecasts, made from the same features, follow the features (shortest
    horizon, sampled ticks); None when there are none (as :attr:`challengers` is None), shared like the names."""

    def __init__(self, feature_names: tuple[str, ...], numbers: array[float], slots: tuple[str, ...] | None) -> None:
        self.feature_names, self.numbers, self.challenger_slots = feature_names, numbers, slots

    @classmethod
    def of(
        cls,
        due: int,
        made_at_ms: int,
        log_price: float,
        features: dict[str, float],
        forecast_bps: float,
        half_width_bps: float,
        weight: int = 1,
        challengers: dict[str, float] | None = None,
    ) -> PendingForecast:
        """An entry for the served ``features`` (a dict, as the model saw them)."""
        # From a tuple, an array is allocated at its exact size (from an iterator it keeps room to grow).
        head = (due, made_at_ms, weight, log_price, forecast_bps, half_width_bps, *features.values())
        if challengers is None:
            return cls(shared_names(tuple(features)), array("d", head), None)
        numbers = array("d", (*head, *challengers.values()))
        return cls(shared_names(tuple(features)), numbers, shared_names(tuple(challengers)))

    @property
    def due(self) -> int:
        """Event time (ms) from which a tick labels it; for a tick horizon, the symbol's tick count instead."""
        return int(self.numbers[_DUE])

    @property
    def made_at_ms(self) -> int:
        return int(self.numbers[_MADE_AT])

    @property
    def weight(self) -> int:
        """Forecasts it stands for: itself and those served but skipped since the previous one was enqueued."""
        return int(self.numbers[_WEIGHT])

    @property
    def log_price(self) -> float:
        return self.numbers[_LOG_PRICE]

    @property
    def forecast_bps(self) -> float:
        return self.numbers[_FORECAST]

    @property
    def half_width_bps(self) -> float:
        """Half the width of the interval served with the forecast (its coverage is scored against it)."""
        return self.numbers[_HALF_WIDTH]

    @property
    def features(self) -> dict[str, float]:
        """The features the forecast was made from, as the dict the model saw."""
        names = self.feature_names
        return dict(zip(names, self.numbers[_FEATURES_AT : _FEATURES_AT + len(names)], strict=True))

    @property
    def challengers(self) -> dict[str, float] | None:
        """The challengers' forecasts made from the same features, as the dict selection made; None if none."""
        slots = self.challenger_slots
        if slots is None:
            return None
        return dict(zip(slots, self.numbers[_FEATURES_AT + len(self.feature_names) :], strict=True))

    @challengers.setter
    def challengers(self, forecasts: dict[str, float] | None) -> None:
        own = self.numbers[: _FEATURES_AT + len(self.feature_names)]
        if forecasts is None:
            self.numbers, self.challenger_slots = own, None
        else:
            self.numbers = array("d", (*own, *forecasts.values()))
            self.challenger_slots = shared_names(tuple(forecasts))

    @property
    def layout(self) -> Layout:
        """Its feature names, challenger slots and count of numbers: the shared tuple a queue keeps for it."""
        return shared_layout(self.feature_names, self.challenger_slots, len(self.numbers))

    def __getstate__(self) -> list[Any]:
        # The layout pickled before the times and challengers joined the array: workers of either kind read both.
        numbers = self.numbers
        own = numbers[_LOG_PRICE : _FEATURES_AT + len(self.feature_names)]
        return [self.due, self.made_at_ms, self.weight, self.feature_names, own, self.challengers]

    def __setstate__(self, values: list[Any]) -> None:
        if len(values) == _ISSUE_15_LAYOUT:
            # (due, made_at_ms, log_price, features dict, forecast_bps, half_width_bps, weight, challengers)
            due, made_at, log_price, features, forecast, half_width, weight, challengers = values
            entry = PendingForecast.of(due, made_at, log_price, features, forecast, half_width, weight, challengers)
        else:
            # (due, made_at_ms, weight, feature names, [log price, forecast, half-width, *features], challengers)
            due, made_at, weight, names, own, challengers = values
            entry = PendingForecast(names, array("d", (due, made_at, weight, *own)), None)
            if challengers is not None:
                entry.challengers = challengers
        self.feature_names, self.numbers = shared_names(entry.feature_names), entry.numbers
        self.challenger_slots = entry.challenger_slots


#: Where each number sits in :attr:`PendingForecast.numbers`; the feature values start at ``_FEATURES_AT``.
_DUE, _MADE_AT, _WEIGHT, _LOG_PRICE, _FORECAST, _HALF_WIDTH, _FEATURES_AT = range(7)
#: Values a pending forecast pickled by issue 15's workers has (its features were a dict).
_ISSUE_15_LAYOUT = 8


class LabelQueue:
    """Bounded pending forecasts of one symbol for one horizon, oldest first.

    >>> q = LabelQueue(Horizon(1000), capacity=4)
    >>> [q.offer(t, t, 0.0, {}, 0.0, 1.0) for t in (0, 100, 250, 500)]
    [True, False, True, True]
    >>> q.due_count(1200, 9), q.skipped
    (1, 1)
    >>> label = q.label(q.peek(0), 1e-4, 1200, q.horizon)
    >>> round(label.target_bps, 6), label.delay_ms
    (1.0, 1200)
    >>> q.pop(1); q.depth, [entry.made_at_ms for entry in q.pending]
    (2, [250, 500])

    The entries' numbers (as :class:`PendingForecast` packs them) follow one another in one ``array('d')`` of
    the queue, each with its layout (feature names, challenger slots, width: shared tuples) in a list: an
    object and an array per entry cost ~120 bytes more, ~3 KB for a symbol's 24. :attr:`pending` and
    :meth:`peek` give entries as :class:`PendingForecast` copies; a snapshot holds those, as it did before.
    """

    __slots__ = (
        "_layouts", "_numbers", "capacity", "dropped_gap", "enqueued", "horizon", "last_offered_ms", "scored",
        "skipped", "unsampled",
    )  # fmt: skip

    def __init__(self, horizon: Horizon, capacity: int = DEFAULT_CAPACITY) -> None:
        self.horizon = horizon
        self.capacity = capacity
        self._numbers = array("d")
        self._layouts: list[Layout] = []
        self.last_offered_ms: int | None = None
        self.enqueued = 0
        self.skipped = 0
        """Forecasts served but not enqueued: too close to the previous one, or the queue was full."""
        self.dropped_gap = 0
        """Pending forecasts dropped because a gap opened before their label (see the forecaster's gap rule)."""
        self.scored = 0
        self.unsampled = 0
        """Forecasts served since the last one enqueued: the next one enqueued stands for them too."""

    @property
    def depth(self) -> int:
        """How many forecasts wait for their label."""
        return len(self._layouts)

    @property
    def pending(self) -> list[PendingForecast]:
        """Copies of the waiting forecasts, oldest first (changing one changes nothing here)."""
        return [self.peek(index) for index in range(len(self._layouts))]

    @property
    def spacing_ms(self) -> int:
        """Least event time between two enqueued forecasts; 0 for a tick horizon (each tick is kept)."""
        return 0 if self.horizon.in_ticks else self.horizon.amount // self.capacity

    def offer(
        self,
        time_ms: int,
        tick_count: int,
        log_price: float,
        features: dict[str, float],
        forecast_bps: float,
        half_width_bps: float,
    ) -> bool:
        """Enqueue a served forecast if the spacing and the bound allow; False (and counted) if not."""
        horizon, layouts, last = self.horizon, self._layouts, self.last_offered_ms
        in_ticks, amount = horizon.in_ticks, horizon.amount
        spacing, bound = (0, amount) if in_ticks else (amount // self.capacity, self.capacity)  # see the module doc
        if (last is not None and time_ms - last < spacing) or len(layouts) >= bound:
            self.skipped += 1
            self.unsampled += 1
            return False
        due = tick_count + amount if in_ticks else time_ms + amount
        # Packed as PendingForecast.of packs an entry, without the entry: once per tick on the next-tick horizon.
        weight = self.unsampled + 1
        head = array("d", (due, time_ms, weight, log_price, forecast_bps, half_width_bps, *features.values()))
        # An empty queue (the next-tick horizon's, each tick) takes the entry's array as it is: already exact size.
        self._numbers = self._numbers + head if layouts else head
        layouts.append(plain_layout(tuple(features), _FEATURES_AT))
        self.unsampled = 0
        self.last_offered_ms = time_ms
        self.enqueued += 1
        return True

    def attach_challengers(self, forecasts: dict[str, float] | None) -> None:
        """Keep model selection's challengers' forecasts with the forecast enqueued last (made from its features)."""
        if forecasts is not None:
            last = self.peek(len(self._layouts) - 1)
            self._numbers = self._numbers[: len(self._numbers) - self._layouts[-1][2]]
            del self._layouts[-1]
            last.challengers = forecasts
            self._append(last)

    def due_count(self, time_ms: int, tick_count: int) -> int:
        """How many of the oldest pending forecasts the tick at ``time_ms`` (the ``tick_count``-th) labels.

        Nothing changes: the caller learns them first and :meth:`pop` s them once that succeeded.
        """
        now = tick_count if self.horizon.in_ticks else time_ms
        numbers, at, count = self._numbers, 0, 0
        for layout in self._layouts:
            if numbers[at + _DUE] > now:  # the due time, exact as a double
                break
            at += layout[2]
            count += 1
        return count

    def peek(self, index: int) -> PendingForecast:
        """A copy of the ``index``-th oldest pending forecast."""
        layouts = self._layouts
        at = width_of(layouts, index)
        names, slots, width = layouts[index]
        return PendingForecast(names, self._numbers[at : at + width], slots)

    def labels(self, count: int, log_price: float, time_ms: int) -> list[ScoredLabel]:
        """The scored labels of the ``count`` oldest pending forecasts by the tick at ``time_ms`` (``log_price``).

        :meth:`label` of each :meth:`peek`, read from the packed numbers without copies (every tick at ``1t``).

        >>> q = LabelQueue(Horizon(3, in_ticks=True))
        >>> q.offer(0, 1, 0.0, {"r1_bps": 2.0}, 0.5, 0.0) and q.offer(10, 2, 1e-4, {"r1_bps": -1.0}, 0.25, 0.0)
        True
        >>> [(label.features, round(label.target_bps, 6), label.delay_ms) for label in q.labels(2, 2e-4, 30)]
        [({'r1_bps': 2.0}, 2.0, 30), ({'r1_bps': -1.0}, 1.0, 20)]
        """
        numbers, layouts, horizon, labels, at = self._numbers, self._layouts, self.horizon, [], 0
        for names, slots, width in layouts[:count] if count < len(layouts) else layouts:
            features_end = at + _FEATURES_AT + len(names)
            # Every field in order, to tuple.__new__: ScoredLabel(...) runs a Python __new__, a frame per label.
            label = (
                horizon,
                dict(zip(names, numbers[at + _FEATURES_AT : features_end])),  # noqa: B905 # sliced to its length
                1e4 * (log_price - numbers[at + _LOG_PRICE]),
                numbers[at + _FORECAST],
                numbers[at + _HALF_WIDTH],
                time_ms - int(numbers[at + _MADE_AT]),
                int(numbers[at + _WEIGHT]),
                None if slots is None else dict(zip(slots, numbers[features_end : at + width])),  # noqa: B905
            )
            labels.append(new_scored_label(ScoredLabel, label))
            at += width
        return labels

    @staticmethod
    def label(entry: PendingForecast, log_price: float, time_ms: int, horizon: Horizon) -> ScoredLabel:
        """The scored label of ``entry`` by the tick at ``time_ms`` with log price ``log_price``."""
        # The packed numbers read here directly (once per label and tick): the same doubles the properties return.
        numbers, names = entry.numbers, entry.feature_names
        return ScoredLabel(
            horizon,
            dict(zip(names, numbers[_FEATURES_AT : _FEATURES_AT + len(names)], strict=True)),
            1e4 * (log_price - numbers[_LOG_PRICE]),
            numbers[_FORECAST],
            numbers[_HALF_WIDTH],
            time_ms - int(numbers[_MADE_AT]),
            int(numbers[_WEIGHT]),
            entry.challengers,
        )

    def pop(self, count: int) -> None:
        """Forget the ``count`` oldest pending forecasts (labelled and learned)."""
        layouts = self._layouts
        if count >= len(layouts):  # all of them (the next-tick horizon, every tick): no widths to add up
            self._numbers = array("d")
            layouts.clear()
        else:
            self._numbers = self._numbers[width_of(layouts, count) :]  # a slice is a new array at its exact size
            del layouts[:count]
        self.scored += count

    def drop_all(self) -> int:
        """Drop every pending forecast (a gap opened before their labels); returns how many."""
        dropped = len(self._layouts)
        self._numbers = array("d")
        self._layouts.clear()
        self.dropped_gap += dropped
        self.last_offered_ms = None
        self.unsampled = 0
        return dropped

    def drop_made_after(self, time_ms: int) -> int:
        """Drop the forecasts made after ``time_ms`` (counted in :attr:`dropped_gap`) and say how many: made at a
        time stamped ahead, they would hold the queue, and the spacing from them refuse all, until time caught up.

        >>> q = LabelQueue(Horizon(1000), capacity=4)
        >>> [q.offer(t, t, 0.0, {}, 0.0, 1.0) for t in (0, 250, 20_000)]
        [True, True, True]
        >>> q.drop_made_after(500), [entry.made_at_ms for entry in q.pending], q.offer(600, 0, 0.0, {}, 0.0, 1.0)
        (1, [0, 250], True)
        """
        layouts, numbers, kept, at = self._layouts, self._numbers, 0, 0
        while kept < len(layouts) and numbers[at + _MADE_AT] <= time_ms:
            at += layouts[kept][2]
            kept += 1
        dropped = len(layouts) - kept
        self._numbers, self.dropped_gap = numbers[:at], self.dropped_gap + dropped
        del layouts[kept:]
        if self.last_offered_ms is not None and self.last_offered_ms > time_ms:
            self.last_offered_ms = self.peek(kept - 1).made_at_ms if kept else None
        return dropped

    def _append(self, entry: PendingForecast) -> None:
        # A new array at its exact size (an in-place extend keeps room to grow): a few per second at most.
        self._numbers = self._numbers + entry.numbers
        self._layouts.append(entry.layout)

    def __getstate__(self) -> list[Any]:
        # The fields it pickled as a dataclass, pending forecasts as a list of entries: either kind reads both.
        return [getattr(self, name) for name in PICKLED_FIELDS]

    def __setstate__(self, values: list[Any]) -> None:
        entries: Iterable[PendingForecast] = ()
        for name, value in zip(PICKLED_FIELDS, values, strict=True):
            if name == "pending":
                entries = value  # a list, or a deque pickled before issue 15's memory work
            else:
                object.__setattr__(self, name, value)
        entries = tuple(entries)
        self._numbers = array("d", [number for entry in entries for number in entry.numbers])
        self._layouts = [entry.layout for entry in entries][:]  # a slice is at its exact size


#: What a :class:`LabelQueue` pickles, in this order: the fields it had as a dataclass.
PICKLED_FIELDS = (
    "horizon", "capacity", "pending", "last_offered_ms", "enqueued", "skipped", "dropped_gap", "scored", "unsampled",
)  # fmt: skip
