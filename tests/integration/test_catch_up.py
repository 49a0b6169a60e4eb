"""A worker catching up on a backlog stays responsive: its web server (health, stats) answers between batches."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tickcast.broker.embedded import EmbeddedBroker
from tickcast.common.records import Tick
from tickcast.testing.pipeline import Pipeline
from tickcast.testing.stats import worker_stats
from tickcast.testing.waiting import wait_for

pytestmark = pytest.mark.integration

BACKLOG = 40_000
#: Kubernetes' liveness probe allows 3 s (deploy/k8s/predictor.yaml); an answer within 1 s leaves room for
#: a busier node than this test's.
HEALTH_WITHIN_S = 1.0


class HealthProbe(threading.Thread):
    """GETs ``url`` back to back until stopped, keeping how long each answered request took (s)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stopping, self.durations = url, threading.Event(), list[float]()

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=30.0) as response:  # nosec B310 # local http
                    response.read()
            except (urllib.error.URLError, ConnectionError):
                self.stopping.wait(0.05)  # not listening yet: the worker is still starting
                continue
            self.durations.append(time.monotonic() - started)
            self.stopping.wait(0.02)


def test_health_answers_within_a_second_while_a_worker_drains_a_backlog(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    # One partition: the worker's whole fetch (up to 1 MB, ~15,000 ticks) is one partition's batch.
    with Pipeline(broker.bootstrap_servers, unique, tmp_path / "workers", partitions=1) as pipeline:
        publisher = pipeline.publisher()
        for i in range(BACKLOG):
            publisher.publish(Tick("SPY", 100.0 + (i % 13) * 0.01, 1.0, 1_700_000_000_000 + i))
        assert publisher.close() == 0
        worker = pipeline.start_workers(1)[0]
        probe = HealthProbe(f"http://127.0.0.1:{worker.web_port}/health")
        probe.start()
        try:

            def drained() -> bool:
                stats = worker_stats(worker, timeout_s=30.0)
                return stats is not None and stats["ticks_in"] >= BACKLOG

            wait_for(drained, 120, f"the worker to handle the {BACKLOG} ticks of its backlog", interval_s=0.1,
                     check=pipeline.check_workers_alive, diagnostics=pipeline.worker_logs)  # fmt: skip
        finally:
            probe.stopping.set()
            probe.join(timeout=35)
        durations = probe.durations
        assert durations, "/health never answered"
        assert max(durations) < HEALTH_WITHIN_S, (
            f"/health took up to {max(durations):.2f} s to answer ({len(durations)} requests from the worker's "
            f"start to the end of its {BACKLOG}-tick backlog; slowest five: "
            f"{', '.join(f'{d:.2f}' for d in sorted(durations)[-5:])} s)"
        )
