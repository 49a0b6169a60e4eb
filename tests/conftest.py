"""Shared fixtures: one embedded broker per test session, private topics and groups per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRADES_FILE = SHARED_DATA / "lean" / "tick_trades.csv.gz"


def require_trades_file() -> Path:
    """The real trades file, or skip the test saying why it is missing."""
    if not TRADES_FILE.is_file():
        pytest.skip(f"real market data not available: {TRADES_FILE} is absent (see ../shared/data/README.md)")
    return TRADES_FILE


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A Tansu broker on a free loopback port for the whole session (memory-only: nothing leaks between runs)."""
    from tickcast.broker.embedded import EmbeddedBroker

    log_dir = tmp_path_factory.mktemp("broker")
    with EmbeddedBroker(log_file=log_dir / "broker.log") as running:
        yield running


@pytest.fixture
def unique() -> str:
    """A short id that keeps this test's topics and consumer groups apart from every other test's."""
    return uuid.uuid4().hex[:10]


def base_env() -> dict[str, str]:
    """The parent's environment minus any TICKCAST_* a developer has exported, so tests configure everything."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
