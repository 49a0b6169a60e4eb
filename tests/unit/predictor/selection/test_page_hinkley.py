"""The compact Page-Hinkley detects on exactly the labels River's does, through snapshots, in far less memory."""

from __future__ import annotations

import gc
import pickle  # nosec B403 # only what these tests pickled is loaded
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st
from river import drift

from tickcast.predictor.selection.page_hinkley import RisingPageHinkley
from tickcast.predictor.snapshot_pickling import dumps

residuals = st.lists(
    st.floats(min_value=0.0, max_value=1e4, allow_nan=False) | st.sampled_from([0.0, 0.3, 50.0]), max_size=300
)
thresholds = st.sampled_from([0.5, 5.0, 50.0, 500.0]) | st.floats(min_value=1e-3, max_value=1e3)


@given(residuals, thresholds, st.integers(min_value=0, max_value=300))
def test_it_detects_on_the_labels_rivers_detector_does_bit_for_bit(
    values: list[float], threshold: float, snapshot_at: int
) -> None:
    river, compact = drift.PageHinkley(threshold=threshold, mode="up"), RisingPageHinkley(threshold)
    for step, x in enumerate(values):
        if step == snapshot_at:  # a failover in the middle: the restored copy carries on identically
            compact = pickle.loads(dumps(compact))  # nosec B301 # pickled just above
        river.update(x)
        compact.update(x)
        assert compact.drift_detected == river.drift_detected, step
        assert compact._sum_increase.hex() == river._sum_increase.hex(), step
        assert compact._min_increase == river._min_increase, step


def test_a_restored_detector_takes_under_half_of_rivers() -> None:
    def restored_bytes(detector: object, copies: int = 50) -> float:
        data = dumps(detector)
        kept: list[object] = [None] * copies
        pickle.loads(data)  # nosec B301 # pickled just above; a first load warms caches up
        tracemalloc.start()
        try:
            gc.collect()  # also empties the free lists, where the loads' temporaries wait
            before = tracemalloc.get_traced_memory()[0]
            for index in range(copies):
                kept[index] = pickle.loads(data)  # nosec B301
            gc.collect()
            return (tracemalloc.get_traced_memory()[0] - before) / copies
        finally:
            tracemalloc.stop()

    river, compact = drift.PageHinkley(threshold=500.0, mode="up"), RisingPageHinkley(500.0)
    for t in range(5000):
        river.update(0.3 * (t % 7))
        compact.update(0.3 * (t % 7))
    compact_bytes, river_bytes = restored_bytes(compact), restored_bytes(river)
    assert compact_bytes <= 0.5 * river_bytes, (compact_bytes, river_bytes)  # measured: ~325 and 790-865 bytes
