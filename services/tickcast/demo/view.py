"""The demo's live terminal view: per-symbol last price and prediction, and stream totals."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tickcast.common.records import Prediction


@dataclass(slots=True)
class SymbolRow:
    prediction: Prediction
    count: int = 0


@dataclass(slots=True)
class LiveStats:
    """Aggregates what the demo has seen; renders itself as a rich renderable."""

    rows: dict[str, SymbolRow] = field(default_factory=dict)
    predictions: int = 0
    dead_letters: int = 0
    workers_seen: set[str] = field(default_factory=set)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    to_predicted_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    """The first part of each latency: tick produced -> the worker's ``predicted_at`` (its fetch and queueing)."""
    _window: deque[tuple[float, int, int]] = field(default_factory=lambda: deque(maxlen=50))

    def add_prediction(self, prediction: Prediction, received_ms: float) -> None:
        self.predictions += 1
        row = self.rows.get(prediction.symbol)
        if row is None:
            row = self.rows[prediction.symbol] = SymbolRow(prediction)
        row.prediction = prediction
        row.count += 1
        self.workers_seen.add(prediction.worker)
        self.latencies_ms.append(received_ms - prediction.tick_produced_at)
        self.to_predicted_ms.append(prediction.predicted_at / 1000 - prediction.tick_produced_at)

    def latency_p50_p99(self) -> tuple[float, float]:
        """p50 and p99 (ms) of the latest predictions' latency (tick produced -> received); NaN before any.

        >>> stats = LiveStats()
        >>> for latency in range(1, 101):
        ...     stats.latencies_ms.append(float(latency))
        >>> stats.latency_p50_p99()
        (51.0, 100.0)
        """
        return _p50_p99(self.latencies_ms)

    def to_predicted_p50_p99(self) -> tuple[float, float]:
        """p50 and p99 (ms) of the latest predictions' tick produced -> ``predicted_at``; NaN before any."""
        return _p50_p99(self.to_predicted_ms)

    def rates(self, ticks_sent: int) -> tuple[float, float]:
        now = time.monotonic()
        self._window.append((now, ticks_sent, self.predictions))
        start_time, start_ticks, start_predictions = self._window[0]
        elapsed = max(now - start_time, 1e-6)
        return (ticks_sent - start_ticks) / elapsed, (self.predictions - start_predictions) / elapsed

    def render(self, ticks_sent: int, workers: int, elapsed_s: float) -> Group:
        tick_rate, prediction_rate = self.rates(ticks_sent)
        table = Table(title="tickcast: live predictions", expand=False)
        for column in (
            "symbol",
            "last price",
            "pred. return (bps)",
            "pred. price",
            "ticks",
            "learned",
            "status",
            "|err| ewm (bps)",
            "worker",
        ):
            table.add_column(column, justify="right" if column not in ("symbol", "status", "worker") else "left")
        for symbol in sorted(self.rows):
            row = self.rows[symbol]
            p = row.prediction
            error = "-" if p.abs_error_ewm_bps is None else f"{p.abs_error_ewm_bps:.2f}"
            table.add_row(
                symbol,
                f"{p.last_price:.4f}",
                f"{p.predicted_return_bps:+.3f}",
                f"{p.predicted_price:.4f}",
                str(row.count),
                str(p.ticks_learned),
                p.status,
                error,
                p.worker,
            )
        p50, p99 = self.latency_p50_p99()
        totals = Text(
            f"elapsed {elapsed_s:5.1f}s | ticks sent {ticks_sent} ({tick_rate:6.1f}/s) | "
            f"predictions {self.predictions} ({prediction_rate:6.1f}/s) | "
            f"dead letters {self.dead_letters} | workers {workers} "
            f"(answering: {len(self.workers_seen)}) | latency p50 {p50:.0f} ms p99 {p99:.0f} ms | Ctrl-C to stop"
        )
        return Group(table, totals)


def _p50_p99(values: deque[float]) -> tuple[float, float]:
    ordered = sorted(values)
    if not ordered:
        return float("nan"), float("nan")
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@contextmanager
def live_view(console: Console, first: RenderableType) -> Iterator[Live]:
    r"""A rich ``Live`` view that leaves the output at the start of a new line when it ends.

    Written to a file or a pipe instead of a terminal, rich prints only the last frame, with no newline after
    it, so the demo's summary line (the last line, for scripts) came out glued to it as ``stopticks=...``.

    >>> import io
    >>> out = io.StringIO()
    >>> with live_view(Console(file=out, force_terminal=False), "first frame") as live:
    ...     live.update("last frame")
    >>> out.getvalue()
    'last frame\n'
    """
    with Live(first, console=console, refresh_per_second=4) as live:
        yield live
    if not console.is_terminal:
        console.line()
