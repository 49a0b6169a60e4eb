"""What one exported metric is: family name, type, help and labels (shared by the worker's metric modules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One exported metric: family name, type, help text and label names.

    >>> MetricSpec("tickcast_ticks", "counter", "x").series
    ('tickcast_ticks_total',)
    >>> MetricSpec("tickcast_h_seconds", "histogram", "x").series
    ('tickcast_h_seconds_bucket', 'tickcast_h_seconds_sum', 'tickcast_h_seconds_count')
    """

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()

    @property
    def series(self) -> tuple[str, ...]:
        """The sample names Prometheus stores, i.e. what PromQL refers to."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return tuple(f"{self.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        return (self.name,)
