"""Calibrate drift detection by replay: alarms on real trades, and delay on a feed with known change points.

A detector runs on the champion's absolute residuals exactly as in the worker (the forecaster with a
drift policy and no challengers). On the real trades nobody knows where the regime changed, so every
alarm is reported as a rate (per 10,000 labels); on the synthetic feed the change points are known, so an
alarm within ``max_delay`` labels after one is a detection (its delay is measured) and any other alarm is
false.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tickcast.common.records import Lineage, Tick
from tickcast.predictor.forecaster import Forecaster
from tickcast.predictor.models import model_spec
from tickcast.predictor.selection.champion import SelectionConfig
from tickcast.predictor.selection.drift import DriftPolicy

SYNTHETIC_SYMBOL = "SYN"


@dataclass(frozen=True, slots=True)
class DriftReplay:
    """Alarms of one detector setting on one feed."""

    detector: str
    feed: str
    labels: int
    alarms: int
    change_points: int = 0
    detected: int = 0
    false_alarms: int = 0
    median_delay: float | None = None

    @property
    def alarms_per_10k(self) -> float:
        return 1e4 * self.alarms / self.labels if self.labels else 0.0

    @property
    def false_per_10k(self) -> float:
        return 1e4 * self.false_alarms / self.labels if self.labels else 0.0


def synthetic_feed(segments: int = 8, segment_ticks: int = 20_000, seed: int = 11) -> tuple[list[Tick], list[int]]:
    """Ticks of one symbol whose volatility switches between 1 and 3 bps a tick every ``segment_ticks``.

    Returns the ticks and the tick indices where the regime changes.

    >>> ticks, changes = synthetic_feed(segments=3, segment_ticks=10)
    >>> len(ticks), changes
    (30, [10, 20])
    """
    rng, price, ticks = random.Random(seed), 100.0, []  # nosec B311 # a reproducible synthetic feed, not a secret
    for index in range(segments * segment_ticks):
        scale = 3.0 if (index // segment_ticks) % 2 else 1.0
        price *= math.exp(rng.gauss(0.0, scale) / 1e4)
        ticks.append(Tick(SYNTHETIC_SYMBOL, price, 1.0, index * 100))
    return ticks, [k * segment_ticks for k in range(1, segments)]


def replay_alarms(ticks: Iterable[Tick], model: str, policy: DriftPolicy) -> Iterator[tuple[int, str, int]]:
    """(tick index, symbol, labels of that symbol so far) for every drift alarm on ``ticks``."""
    config = SelectionConfig(
        model, (), drift=DriftPolicy(policy.detector, policy.adwin_delta, policy.ph_threshold, False)
    )
    forecaster = Forecaster(model_spec(model), worker="drift-replay", selection=config)
    for index, tick in enumerate(ticks):
        forecaster.process(tick, Lineage("replay", 0, index, tick.event_time), tick.event_time * 1000)
        for event in forecaster.model_events:
            yield index, event.symbol, forecaster.states[event.symbol].errors_scored
        forecaster.model_events.clear()


def real_alarms(ticks: list[Tick], model: str, policy: DriftPolicy, name: str) -> DriftReplay:
    """Alarms per label on real trades (labels: ticks whose return was learned, as in the worker)."""
    alarms = list(replay_alarms(ticks, model, policy))
    labels = len(ticks)  # an upper bound per symbol; outliers and first ticks are a small share
    return DriftReplay(name, "real", labels, len(alarms))


def synthetic_alarms(model: str, policy: DriftPolicy, name: str, max_delay: int = 5_000) -> DriftReplay:
    """Detections, their median delay and false alarms on :func:`synthetic_feed`.

    >>> r = synthetic_alarms("persistence", DriftPolicy("adwin", adwin_delta=0.002), "adwin", max_delay=5000)
    >>> r.change_points, r.detected >= 5
    (7, True)
    """
    ticks, changes = synthetic_feed()
    alarms = [index for index, _, _ in replay_alarms(ticks, model, policy)]
    delays, false_alarms, matched = [], 0, set()
    for alarm in alarms:
        after = [c for c in changes if c <= alarm < c + max_delay]
        if after and after[-1] not in matched:
            matched.add(after[-1])
            delays.append(alarm - after[-1])
        elif not after:
            false_alarms += 1
    return DriftReplay(
        name, "synthetic", len(ticks), len(alarms), len(changes), len(matched), false_alarms,
        statistics.median(delays) if delays else None,
    )  # fmt: skip
