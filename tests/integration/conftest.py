"""The default private pipeline of an integration test: own topics and group on the session broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tickcast.broker.embedded import EmbeddedBroker
from tickcast.testing.pipeline import Pipeline


@pytest.fixture
def pipeline(broker: EmbeddedBroker, unique: str, tmp_path: Path) -> Iterator[Pipeline]:
    """Topics created, no worker yet; every worker the test starts is stopped afterwards."""
    with Pipeline(bootstrap_servers=broker.bootstrap_servers, unique=unique, log_dir=tmp_path / "workers") as running:
        yield running
