"""``bench.latency``: every measurement runs on a broker of its own, as the first-10-s target names."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def latency(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))  # bench is a folder of the repository, not an installed package
    import bench.latency

    return bench.latency


class FakeBroker:
    started: list[FakeBroker] = []

    def __init__(self, log_file: Path) -> None:
        self.log_file = log_file
        self.bootstrap_servers = f"127.0.0.1:{9000 + len(self.started)}"
        self.pid = 4000 + len(self.started)
        self.stopped = False
        self.started.append(self)

    def __enter__(self) -> FakeBroker:
        return self

    def __exit__(self, *_: Any) -> None:
        self.stopped = True


def test_each_measurement_gets_a_fresh_broker_and_stops_it(
    latency: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bench.core import Context, Options

    FakeBroker.started = []
    measured: list[tuple[str, int, bool]] = []

    def fake_measure_on(context: Context, kind: str, rate: float, where: str, label: str) -> dict[str, Any]:
        measured.append((context.bootstrap_servers, context.broker_pid, FakeBroker.started[-1].stopped))
        return {"kind": kind}

    monkeypatch.setattr(latency, "EmbeddedBroker", FakeBroker)
    monkeypatch.setattr(latency, "_measure_on", fake_measure_on)
    shared = Context(bootstrap_servers="127.0.0.1:1", broker_pid=1, work_dir=tmp_path, options=Options())
    for kind in ("plain", "worker"):
        latency.measure(shared, kind, 500.0)
    assert measured == [("127.0.0.1:9000", 4000, False), ("127.0.0.1:9001", 4001, False)]
    assert all(broker.stopped for broker in FakeBroker.started)
    assert len({broker.log_file for broker in FakeBroker.started}) == 2
