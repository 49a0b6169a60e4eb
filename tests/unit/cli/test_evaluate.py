"""``tickcast evaluate`` through the CLI: the scores, and a clear line when plotting is not installed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickcast.cli import app


def tick_file(tmp_path: Path, ticks: int = 200) -> Path:
    rows = [f"2024-03-04T14:30:{i // 10:02d}.{i % 10}Z,X,{10 + (i % 7) / 100:.2f},1" for i in range(ticks)]
    path = tmp_path / "ticks.csv"
    path.write_text("ts_et,symbol,price,size\n" + "\n".join(rows) + "\n")
    return path


def test_scores_are_printed_as_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", str(tick_file(tmp_path)), "--json", "--model", "linear"])
    assert result.exit_code == 0, result.output
    assert [model["name"] for model in json.loads(result.stdout)["models"]] == ["linear"]


def test_without_matplotlib_a_plot_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("matplotlib", "matplotlib.backends.backend_agg", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)  # `import` of a None entry fails as if not installed
    plot = tmp_path / "skill.png"
    result = CliRunner().invoke(app, ["evaluate", str(tick_file(tmp_path)), "--json", "--plot", str(plot)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # an exit, not an escaped exception
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("tickcast: error: plotting needs matplotlib"), result.stderr
    assert "pip install 'tickcast[plot]'" in errors[0] and "Traceback" not in result.output
    assert not plot.exists()


@pytest.mark.parametrize("extra", [[], ["--horizons", "1s"], ["--horizons", "1s", "--residuals", "streams.npz"]])
@pytest.mark.parametrize(("content", "said"), [(None, "no such file"), ("a,b\n1,2\n", "header lacks column(s)")])
def test_a_missing_file_or_column_is_one_error_line(
    tmp_path: Path, extra: list[str], content: str | None, said: str
) -> None:
    path = tmp_path / "ticks.csv"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(app, ["evaluate", str(path), *extra])
    assert isinstance(result.exception, SystemExit), f"{extra}: escaped {result.exception!r}"
    assert result.exit_code == 1 and f"tickcast: error: {path}: {said}" in result.stderr, result.output
