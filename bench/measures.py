"""Summaries of measured series: percentiles of latencies, longest gaps between arrivals."""

from __future__ import annotations

import itertools
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the values.

    >>> percentile([1, 2, 3, 4], 50), percentile([1, 2, 3, 4], 99), percentile(range(1000), 99.9)
    (2, 4, 998)
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = max(1, int(-(-q * len(ordered) // 100)))  # ceil without floats drifting
    return ordered[min(rank, len(ordered)) - 1]


def longest_gap(times: Iterable[float], start: float | None = None, end: float | None = None) -> float:
    """Longest interval with no event inside [start, end] (window edges count as events).

    >>> longest_gap([1.0, 1.1, 2.0, 2.05]), longest_gap([1.0, 1.1], start=0.0, end=3.0)
    (0.9, 1.9)
    """
    points = sorted(t for t in times if (start is None or t >= start) and (end is None or t <= end))
    if start is not None:
        points.insert(0, start)
    if end is not None:
        points.append(end)
    return round(max((b - a for a, b in itertools.pairwise(points)), default=0.0), 6)


def bucket_percentile(before: list[tuple[str, int]], after: list[tuple[str, int]], q: float) -> float | None:
    """Upper bound (the bucket's ``le``) of the q-th percentile of what was observed between two cumulative snapshots.

    >>> bucket_percentile([("0.001", 0), ("0.002", 0), ("+Inf", 0)], [("0.001", 98), ("0.002", 100), ("+Inf", 100)], 99)
    0.002
    >>> bucket_percentile([("0.001", 5), ("+Inf", 5)], [("0.001", 5), ("+Inf", 5)], 99) is None
    True
    """
    deltas = [(le, count - dict(before).get(le, 0)) for le, count in after]
    total = deltas[-1][1] if deltas else 0
    if total <= 0:
        return None
    for le, cumulative in deltas:
        if cumulative * 100 >= q * total:
            return float(le)
    return float("inf")
