"""``bench.scaleout``: 2 workers over 1 is read round by round, each round's pair drained next to each other."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def scaleout(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))  # bench is a folder of the repository, not an installed package
    import bench.scaleout

    return bench.scaleout


def fake_run(rate: float, processes: int) -> dict[str, Any]:
    return {
        "rate_per_s": rate,
        "steady_rate_per_s": rate,
        "largest_process_share": 0.54 if processes == 2 else 1.0,
        "processes_cores": 1.0 * processes,
        "broker_cores": 0.1,
        "bench_cores": 0.05,
        "other_cores": 0.0,
    }


def test_two_over_one_is_the_median_of_the_rounds_ratios(scaleout: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.throughput
    from bench.core import Options

    # Round by round 2w / 1w is 1.5, 1.8, 1.2 (median 1.5); the median runs' ratio would be 36 / 20 = 1.8.
    rates = {1: [20.0, 20.0, 30.0], 2: [30.0, 36.0, 36.0]}
    drained: list[int] = []

    def fake_drain(context: Any, kind: str, processes: int = 1, **_: Any) -> dict[str, Any]:
        number = drained.count(processes)
        drained.append(processes)
        return fake_run(rates[processes][number], processes)

    monkeypatch.setattr(bench.throughput, "drain", fake_drain)
    monkeypatch.setattr(scaleout, "available_cpus", lambda: 2)
    result = scaleout.run(SimpleNamespace(options=Options(scaleout_rounds=3)))
    assert drained == [1, 2, 2, 1, 1, 2]
    rows = {row.metric: row for row in result.rows}
    assert rows["2 workers / 1 worker, median of 3 rounds"].value == 1.5
    assert [rows[f"2 workers / 1 worker, round {n}"].value for n in (1, 2, 3)] == [1.5, 1.8, 1.2]
    assert result.metrics["two_over_one_of_median_runs"] == 1.8
    assert result.inputs["scaleout_rounds"] == 3


def test_one_round_reads_as_before(scaleout: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.throughput
    from bench.core import Options

    def fake_drain(context: Any, kind: str, processes: int = 1, **_: Any) -> dict[str, Any]:
        return fake_run(10.0 * processes, processes)

    monkeypatch.setattr(bench.throughput, "drain", fake_drain)
    monkeypatch.setattr(scaleout, "available_cpus", lambda: 2)
    result = scaleout.run(SimpleNamespace(options=Options(scaleout_rounds=1)))
    rows = {row.metric: row for row in result.rows}
    assert rows["2 workers / 1 worker"].value == 2.0
    assert not [metric for metric in rows if "round" in metric]


def test_repeat_sets_the_scaleout_rounds_unless_they_are_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from bench.__main__ import options_from, parse_args

    def rounds(*argv: str) -> int:
        return int(options_from(parse_args(list(argv))).scaleout_rounds)

    assert (rounds(), rounds("--quick"), rounds("--repeat", "2")) == (3, 1, 2)
    assert rounds("--repeat", "2", "--scaleout-rounds", "5") == 5
