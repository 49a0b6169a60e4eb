"""Unit tests for ``tickcast.evaluation.plot``: a PNG with matplotlib; without it, one clear line, and nothing
else in tickcast needs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tickcast.common.records import Tick
from tickcast.evaluation import evaluate
from tickcast.evaluation.plot import plot_skill


def ticks(prices: list[float], symbol: str) -> list[Tick]:
    return [Tick(symbol, price, 1.0, 1_000 * i) for i, price in enumerate(prices)]


def test_plot_skill_writes_an_image(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    prices = [100.0 + 0.01 * (i % 3) for i in range(400)]
    report = evaluate(ticks(prices, "A") + ticks(prices, "B"), ["mean-reversion", "ew-mean"], checkpoint_every=40)
    out = plot_skill(report, tmp_path / "skill.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Runs in a fresh interpreter where importing matplotlib fails, as on an install without the `plot` extra.
WITHOUT_MATPLOTLIB = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    sys.modules["matplotlib"] = None  # any `import matplotlib...` now raises ImportError

    import tickcast
    import tickcast.evaluation
    import tickcast.predictor.app
    from tickcast.common.records import Tick
    from tickcast.evaluation.plot import PlottingUnavailable, plot_skill

    # Every module of the package imports without it (__main__ would run the CLI).
    for module in pkgutil.walk_packages(tickcast.__path__, "tickcast."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)

    report = tickcast.evaluation.evaluate([Tick("X", 10.0 + i % 2, 1.0, i) for i in range(5)], ["persistence"])
    try:
        plot_skill(report, sys.argv[1])
    except PlottingUnavailable as exc:
        print(exc)
    else:
        print("plot_skill did not raise")
    """
)


@pytest.mark.long
def test_without_matplotlib_plotting_says_how_to_install_it_and_everything_else_imports(tmp_path: Path) -> None:
    target = tmp_path / "skill.png"
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB, str(target)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    message = result.stdout.strip()
    assert "\n" not in message, message
    assert "tickcast[plot]" in message and "matplotlib" in message, message
    assert not target.exists()
