"""Shared fixtures: one embedded broker per test session, private topics and groups per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from tickcast.testing.data import DataMissing, DataSettings, trades_file
from tickcast.testing.pipeline import new_unique

if TYPE_CHECKING:
    from tickcast.broker.embedded import EmbeddedBroker


# The suite runs two test processes on a 2-core machine, beside brokers and workers: how fast Hypothesis
# draws or runs an example says nothing about correctness there. Without this, the writer's property tests
# failed "input generation is slow" at load 5-9; examples and assertions are unchanged.
settings.register_profile("tickcast", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tickcast")


def run_order(item: pytest.Item) -> int:
    """Where a test goes in the run: ``long`` ones first, then the other integration tests, then the rest."""
    if item.get_closest_marker("long") is not None:
        return 0
    return 1 if item.get_closest_marker("integration") is not None else 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Longest first: `make test` hands each xdist process its next test only when it is free (--dist load
    # --maxschedchunk 1), so the minute-long tests start early, side by side, and the short ones fill in
    # around them. In collection order, one process was handed nearly every integration test up front and
    # the other sat idle for the last third of the run. A stable sort: the same order in every process.
    items.sort(key=run_order)


def require_trades_file() -> Path:
    """The real trades file; without it, skip saying why, except in CI (``CI=true``), where it fails."""
    settings = DataSettings()
    try:
        return trades_file(settings)
    except DataMissing as exc:
        if settings.ci:
            pytest.fail(f"{exc}; CI must run the real-data tests", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A Tansu broker on a free loopback port for the whole session (memory-only: nothing leaks between runs)."""
    from tickcast.broker.embedded import EmbeddedBroker

    log_dir = tmp_path_factory.mktemp("broker")
    with EmbeddedBroker(log_file=log_dir / "broker.log") as running:
        yield running


@pytest.fixture
def unique() -> str:
    """A short id that keeps this test's topics and consumer groups apart from every other test's."""
    return new_unique()
