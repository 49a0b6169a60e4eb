"""What the gateway tells of the pipeline: its memory stays bounded whether or not anyone asks for it."""

from __future__ import annotations

from tickcast.gateway.cache import Published
from tickcast.gateway.pipeline import WINDOW_S, PipelineView


def test_a_gateway_nobody_asks_for_its_pipeline_keeps_only_the_window_of_counts() -> None:
    # Only the dashboard requests /v1/pipeline; a gateway serving trading systems alone is never asked.
    now = [0.0]
    view = PipelineView(clock=lambda: now[0])
    for offset in range(100_000):
        now[0] = offset * 0.001  # 1,000 predictions/s for 100 s, each read at its own clock reading
        view.observe(Published(0, offset, "A", 0.0, 1_000.0, "{}", worker="w-1", tick_produced_at_ms=990))
    kept = len(view._counts)
    assert kept <= 1_000 * WINDOW_S + 1, f"{kept} counts kept for a {WINDOW_S:g} s window of 1,000 predictions/s"
    assert 999.0 <= view.rate() <= 1_001.0
