"""``bench.peers.scenario``: interleaved rounds, ratios as medians of the rounds', only exactly-once runs counted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
TICKS = 100
ONLY = ("bytewax", "quix", "bytewax-user")


@pytest.fixture
def modules(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, ModuleType]:
    monkeypatch.syspath_prepend(str(ROOT))  # bench is a folder of the repository, not an installed package
    import bench.core
    import bench.peers.scenario
    import bench.throughput
    from bench.processors import PEERS, USER_PEERS

    # Three peers stand for all, whatever the peers' venv holds (or whether it exists): the drains are faked.
    picked = [peer for peer in (*PEERS, *USER_PEERS) if peer in ONLY]
    monkeypatch.setattr(bench.peers.scenario, "_available", lambda notes: (picked, {}))
    return bench.peers.scenario, bench.throughput


def fake_drains(
    monkeypatch: pytest.MonkeyPatch, throughput: ModuleType, rates: dict[str, list[float]], twice: set[tuple[str, int]]
) -> list[str]:
    """Replace :func:`bench.throughput.drain`: each kind's n-th run gets ``rates[kind][n]`` (default 10/s), and
    answers one tick twice if ``(kind, n)`` is in ``twice``. Returns the order the drains ran in."""
    order: list[str] = []

    def drain(context: Any, kind: str, **_: Any) -> dict[str, Any]:
        number = order.count(kind)
        order.append(kind)
        return {
            "kind": kind,
            "rate_per_s": rates.get(kind, [10.0] * 9)[number],
            "answered": TICKS,
            "duplicates": 1 if (kind, number) in twice else 0,
            "process_cpu_us_per_tick": 40.0,
            "rate_timeline": [[0.0, 1.0]],
        }

    monkeypatch.setattr(throughput, "drain", drain)
    return order


def run_scenario(scenario: ModuleType, repeat: int) -> Any:
    from bench.core import Options

    # The peers' rounds are their own setting; --repeat (1 here) is the other scenarios'.
    return scenario.run(SimpleNamespace(options=Options(ticks=TICKS, peers_rounds=repeat)))


def row(result: Any, starts: str) -> Any:
    found = [r for r in result.rows if r.metric.startswith(starts)]
    assert len(found) == 1, [r.metric for r in result.rows]
    return found[0]


def test_every_configuration_drains_once_a_round_in_alternating_order(
    modules: tuple[ModuleType, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, throughput = modules
    order = fake_drains(monkeypatch, throughput, {}, set())
    result = run_scenario(scenario, repeat=3)
    forward = ["worker", "plain", "minimal", "quix", "bytewax", "bytewax-user"]
    assert order == forward + forward[::-1] + forward
    assert [len(runs) for runs in result.metrics["runs"].values()] == [3] * 6
    assert "rate_timeline" not in result.metrics["runs"]["worker"][0]


def test_target_rows_report_the_median_of_the_rounds_ratios(
    modules: tuple[ModuleType, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, throughput = modules
    # Round by round worker / bytewax is 1.0, 2.0, 0.75 (median 1.0); the median runs' ratio would be 200 / 100 = 2.0.
    rates = {"worker": [100.0, 200.0, 300.0], "bytewax": [100.0, 100.0, 400.0], "quix": [50.0, 50.0, 50.0]}
    fake_drains(monkeypatch, throughput, rates, set())
    result = run_scenario(scenario, repeat=3)
    target = row(result, "view 1: tickcast worker / fastest peer")
    assert target.metric == "view 1: tickcast worker / fastest peer (bytewax)"
    assert target.value == 1.0
    assert target.passed is True
    assert row(result, "tickcast worker / quix").value == 4.0
    assert result.metrics["worker_over_peer_by_round"]["bytewax"] == [1.0, 2.0, 0.75]
    assert result.metrics["rates"]["bytewax"] == [100.0, 100.0, 400.0]
    # View 2's ceiling: the minimal loop (10/s every round) over bytewax-user (10/s), round by round.
    assert row(result, "view 2 ceiling").value == 1.0
    assert result.metrics["ceiling_by_round"] == [1.0, 1.0, 1.0]


def test_a_run_that_answered_a_tick_twice_counts_in_no_ratio(
    modules: tuple[ModuleType, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, throughput = modules
    rates = {"worker": [100.0, 200.0, 300.0], "bytewax": [100.0, 100.0, 400.0]}
    fake_drains(monkeypatch, throughput, rates, {("bytewax", 0)})
    result = run_scenario(scenario, repeat=3)
    assert result.metrics["worker_over_peer_by_round"]["bytewax"] == [None, 2.0, 0.75]
    assert row(result, "view 1: tickcast worker / fastest peer").value == 1.375
    assert result.metrics["counted"]["bytewax"] == [False, True, True]
    assert any("bytewax, round 1" in note and "1 twice" in note for note in result.notes)
    # The worker's own duplicate takes its round out of every ratio.
    fake_drains(monkeypatch, throughput, rates, {("worker", 1)})
    result = run_scenario(scenario, repeat=3)
    assert result.metrics["worker_over_peer_by_round"]["bytewax"] == [1.0, None, 0.75]


def test_a_peer_that_could_not_be_measured_sits_out_the_later_rounds(
    modules: tuple[ModuleType, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, throughput = modules
    order = fake_drains(monkeypatch, throughput, {}, set())
    measured: Callable[..., dict[str, Any]] = throughput.drain

    def drain(context: Any, kind: str, **options: Any) -> dict[str, Any]:
        if kind == "quix" and "quix" in order:
            order.append(kind)
            raise throughput.BenchError("predictions of quix: timed out\nlogs ...")
        return measured(context, kind, **options)

    monkeypatch.setattr(throughput, "drain", drain)
    result = run_scenario(scenario, repeat=3)
    assert order.count("quix") == 2
    assert result.metrics["runs"]["quix"][1] == {"failed": "predictions of quix: timed out"}
    assert result.metrics["worker_over_peer_by_round"]["quix"] == [1.0, None, None]
    assert any("quix could not be measured in round 2" in note for note in result.notes)
