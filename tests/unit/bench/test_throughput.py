"""``bench.throughput``: drains of the configurations a ratio compares alternate, so load drift hits them alike."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def throughput(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))  # bench is a folder of the repository, not an installed package
    import bench.throughput

    return bench.throughput


def test_rounds_alternate_their_order(throughput: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []

    def fake_drain(context: Any, kind: str, **_: Any) -> dict[str, Any]:
        order.append(kind)
        return {"kind": kind, "rate_per_s": float(len(order))}

    monkeypatch.setattr(throughput, "drain", fake_drain)
    context = SimpleNamespace(options=SimpleNamespace(repeat=3))
    runs = throughput.interleaved(context, {"a": {"kind": "a"}, "b": {"kind": "b"}, "c": {"kind": "c"}})
    assert order == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert [r["rate_per_s"] for r in runs["a"]] == [1.0, 6.0, 7.0]


def test_the_median_run_stands_for_the_rest(throughput: ModuleType) -> None:
    runs = [{"rate_per_s": 30.0}, {"rate_per_s": 10.0}, {"rate_per_s": 20.0}, {"rate_per_s": None}]
    assert throughput.median_run(runs) == {"rate_per_s": 10.0}
    assert throughput.median_run(runs[:3]) == {"rate_per_s": 20.0}
