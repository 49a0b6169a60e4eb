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


def test_worker_over_plain_is_the_median_of_the_rounds_ratios(
    throughput: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.core import Options

    # Round by round worker / plain is 1.0, 3.0, 0.5 (median 1.0); the median runs' ratio would be 20 / 10 = 2.0.
    rates = {"worker": [10.0, 30.0, 20.0], "plain": [10.0, 10.0, 40.0]}
    drained: list[str] = []

    def fake_drain(context: Any, kind: str, snapshots: bool = False, **_: Any) -> dict[str, Any]:
        name = f"{kind}_snapshots" if snapshots else kind
        number = drained.count(name)
        drained.append(name)
        rate = rates.get(name, [5.0] * 3)[number]
        return {"kind": kind, "rate_per_s": rate, "process_cpu_us_per_tick": 1e6 / rate, "broker_cores": 0.5}

    monkeypatch.setattr(throughput, "drain", fake_drain)
    # next_tick=False: no extra drain at the services' defaults.
    result = throughput.run(SimpleNamespace(options=Options(throughput_rounds=3, next_tick=False)))
    assert drained.count("worker") == drained.count("plain") == 3
    rows = {row.metric: row for row in result.rows}
    assert (rows["worker / plain"].value, rows["worker / plain"].passed) == (1.0, True)
    assert [rows[f"worker / plain, round {n}"].value for n in (1, 2, 3)] == [1.0, 3.0, 0.5]
    assert result.metrics["worker_over_plain_of_median_runs"] == 2.0


def test_repeat_sets_the_throughput_rounds_unless_they_are_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from bench.__main__ import options_from, parse_args

    def rounds(*argv: str) -> int:
        return int(options_from(parse_args(list(argv))).throughput_rounds)

    assert (rounds(), rounds("--quick"), rounds("--repeat", "2")) == (3, 1, 2)
    assert rounds("--repeat", "2", "--throughput-rounds", "5") == 5
