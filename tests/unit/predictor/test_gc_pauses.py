"""The collector's pauses: each collection counted once, under its generation, with its wall time."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tickcast.predictor import gc_pauses
from tickcast.predictor.gc_pauses import GcPauses


def observed(buckets: list[tuple[str, int]]) -> dict[str, int]:
    """Observations per bucket (not cumulative), only the non-empty ones."""
    out, previous = {}, 0
    for le, cumulative in buckets:
        if cumulative > previous:
            out[le] = cumulative - previous
        previous = cumulative
    return out


@pytest.fixture
def pauses() -> Iterator[GcPauses]:
    meter = GcPauses()
    meter.install()
    yield meter
    meter.uninstall()


def test_each_collection_is_counted_once_under_its_generation(pauses: GcPauses) -> None:
    pauses.install()  # a second install must not time collections twice
    gc.collect(0)
    gc.collect(2)
    gc.collect(2)
    counts = {name: sum(observed(buckets).values()) for name, buckets in pauses.to_stats().items()}
    # Automatic young collections may run meanwhile; the explicit ones are all there, and only once each.
    assert counts["gc_gen2"] == 2
    assert counts["gc_gen0"] >= 1
    assert counts["gc_gen1"] == 0


def test_a_pause_is_the_wall_time_from_the_collections_start_to_its_end(
    pauses: GcPauses, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([100.0, 100.004])
    monkeypatch.setattr(gc_pauses.time, "perf_counter", lambda: next(clock))
    gc.disable()  # no automatic collection may take the scripted readings
    try:
        gc.collect(1)
    finally:
        gc.enable()
    monkeypatch.undo()
    assert observed(pauses.to_stats()["gc_gen1"]) == {"0.005": 1}  # 4 ms


def test_uninstalled_it_sees_nothing() -> None:
    meter = GcPauses()
    meter.install()
    meter.uninstall()
    gc.collect(2)
    assert all(buckets[-1][1] == 0 for buckets in meter.to_stats().values())
