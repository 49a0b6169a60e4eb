"""Charts of an evaluation (optional: needs the ``plot`` extra, i.e. matplotlib).

matplotlib is imported inside :func:`plot_skill` only, so this module, and everything that imports it,
loads without the extra; a missing matplotlib becomes :class:`PlottingUnavailable` when a chart is asked for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tickcast.evaluation.report import EvaluationReport


class PlottingUnavailable(Exception):
    """matplotlib is not installed; the message says how to install it."""


def plot_skill(report: EvaluationReport, path: str | Path) -> Path:
    """Draw cumulative clean skill against each symbol's tick count, one panel per symbol, to ``path``.

    Needs matplotlib (``pip install 'tickcast[plot]'``), else raises :class:`PlottingUnavailable`. The Agg
    canvas is used directly, so no display and no global backend switch.

    >>> import tempfile
    >>> from tickcast.common.records import Tick
    >>> from tickcast.evaluation import evaluate
    >>> ticks = [Tick("X", 10.0 + (i % 3) / 100, 1.0, i) for i in range(300)]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = plot_skill(evaluate(ticks, ["mean-reversion"], checkpoint_every=50), Path(d, "skill.png"))
    ...     out.stat().st_size > 0
    True
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        # One line, as the CLI prints it: what is missing and the command that installs it.
        raise PlottingUnavailable(
            f"plotting needs matplotlib, which cannot be imported ({exc}); install it: pip install 'tickcast[plot]'"
        ) from None

    path = Path(path)
    symbols = sorted({s for model in report.models for s in model.series})
    columns = min(2, max(1, len(symbols)))
    rows = max(1, math.ceil(len(symbols) / columns))
    figure = Figure(figsize=(6.0 * columns, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, symbol in enumerate(symbols):
        ax: Any = axes[index // columns][index % columns]
        for model in report.models:
            points = [p for p in model.series.get(symbol, []) if p.skill is not None]
            if points:
                ax.plot([p.ticks for p in points], [p.skill for p in points], label=model.name, linewidth=1.2)
        ax.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(symbol)
        ax.set_xlabel("ticks")
        ax.set_ylabel("cumulative RMSE skill (clean)")
        ax.legend(fontsize="small")
    for index in range(len(symbols), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    figure.savefig(path, dpi=110)
    return path
