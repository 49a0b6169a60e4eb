"""The demo's live view, printed to a pipe as `make demo` in CI or a script sees it."""

from __future__ import annotations

import io

from rich.console import Console

from tickcast.demo.run import DemoResult
from tickcast.demo.view import LiveStats, live_view


def test_the_summary_line_starts_a_line_of_its_own_when_the_view_is_piped() -> None:
    out = io.StringIO()
    stats = LiveStats()
    with live_view(Console(file=out, force_terminal=False, width=80), stats.render(0, 2, 0.0)) as live:
        live.update(stats.render(10, 2, 1.0))
    out.write(DemoResult(10, 10, 0, 2, 21.0, 40.5, 10.0).summary_line() + "\n")
    last_line = out.getvalue().splitlines()[-1]
    assert last_line.startswith("ticks=10 predictions=10 dead_letters=0 workers=2"), last_line
