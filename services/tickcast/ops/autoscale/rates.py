"""The group's recent history: lag samples and the processing rate derived from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class LagSample:
    """One reading of the group: total lag, and the sum of its positions (grows by one per processed tick)."""

    at: datetime
    lag: int
    consumed: int


def recent_samples(samples: Sequence[LagSample], window_s: float) -> list[LagSample]:
    """The samples of the last ``window_s`` plus the newest one before it (oldest first).

    The older anchor makes rates cover the whole window even when readings are irregular: the control loop
    pauses while workers start, and the seconds after a gap must not make a busy group look idle.

    >>> from datetime import UTC, timedelta
    >>> t = datetime(2024, 1, 1, tzinfo=UTC)
    >>> [s.lag for s in recent_samples([LagSample(t + timedelta(seconds=s), s, 0) for s in (0, 5, 30, 31)], 10)]
    [5, 30, 31]
    >>> [s.lag for s in recent_samples([LagSample(t + timedelta(seconds=s), s, 0) for s in (0, 5, 10)], 10)]
    [0, 5, 10]
    """
    if not samples:
        return []
    newest = samples[-1].at
    first = next(i for i, s in enumerate(samples) if (newest - s.at).total_seconds() <= window_s)
    return list(samples[max(0, first - 1) :])


def processing_rate(samples: Sequence[LagSample], window_s: float) -> float:
    """Ticks/s the group processed over :func:`recent_samples` (from its positions); 0 with fewer than two.

    >>> from datetime import UTC
    >>> t = [datetime(2024, 1, 1, 0, 0, s, tzinfo=UTC) for s in (0, 5, 10)]
    >>> processing_rate([LagSample(t[0], 0, 1000), LagSample(t[1], 0, 1100), LagSample(t[2], 0, 3000)], 60)
    200.0
    """
    recent = recent_samples(samples, window_s)
    if len(recent) < 2:
        return 0.0
    elapsed = (recent[-1].at - recent[0].at).total_seconds()
    # Positions only move back if offsets are reset by hand; that is not negative work.
    return max(0.0, (recent[-1].consumed - recent[0].consumed) / elapsed) if elapsed > 0 else 0.0
