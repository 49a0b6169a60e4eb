"""Unit tests for ``tickcast.evaluation.report``: a report serialises to JSON and renders as a table."""

from __future__ import annotations

import json

import pytest

from tickcast.common.records import Tick
from tickcast.evaluation import EvaluationReport, evaluate

PRICES = [100.0, 100.01, 100.0, 100.0, 100.01, 100.02]


def report() -> EvaluationReport:
    return evaluate([Tick("X", p, 1.0, 1_000 * i) for i, p in enumerate(PRICES)], ["persistence", "mean-reversion"])


def test_report_serialises_with_null_for_undefined_ratios() -> None:
    data = json.loads(report().to_json())
    assert [m["name"] for m in data["models"]] == ["persistence", "mean-reversion"]
    assert data["models"][0]["overall"]["directional_accuracy"] is None
    assert data["checkpoint_every"] == 1000
    assert data["models"][1]["series"]["X"][-1]["ticks"] == len(PRICES)


def test_table_has_a_row_per_symbol_and_an_all_row_per_model() -> None:
    table = report().render_table()
    assert table.row_count == 4  # (X, ALL) per model
    assert [column.header for column in table.columns][:4] == ["model", "symbol", "ticks", "RMSE"]
    assert list(table.columns[1].cells) == ["X", "ALL", "X", "ALL"]
    assert list(table.columns[4].cells)[:2] == ["0.0000", "0.0000"], "persistence has zero skill by definition"


def test_model_looks_up_by_name() -> None:
    assert report().model("mean-reversion").name == "mean-reversion"
    with pytest.raises(KeyError):
        report().model("nope")
