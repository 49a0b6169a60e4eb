"""Worker metrics without Kafka: what TickHandler records and what /metrics would serve."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from tickcast.common.records import Lineage, Tick
from tickcast.predictor.metrics import (
    LATENCY_BUCKETS,
    OWN_LATENCY_BUCKETS,
    PROCESSING_BUCKETS,
    WorkerMetrics,
    series_names,
)
from tickcast.predictor.runtime import TickHandler
from tickcast.predictor.settings import PredictorSettings

NOW_MS = 1_700_000_000_000


# Next-tick horizon: the ticks here are 1 ms apart, so a time horizon's labels would never arrive.
def handler(worker: str = "unit") -> TickHandler:
    return TickHandler(PredictorSettings(bootstrap_servers="127.0.0.1:1", worker_id=worker, horizons="1t"))


def samples(metrics: WorkerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def feed(h: TickHandler, n: int, symbol: str = "SPY", partition: int = 2, produced_at_ms: int = NOW_MS) -> None:
    for i in range(n):
        value = h.tick_codec.encode(Tick(symbol, 100.0 + (i % 7) * 0.05, 1.0, NOW_MS + i).to_avro())
        h.handle(symbol.encode(), value, Lineage("ticks", partition, i, produced_at_ms))


def test_handler_counts_ticks_predictions_statuses_and_dead_letters() -> None:
    h = handler()
    feed(h, 60)
    h.handle(b"SPY", b"not avro", Lineage("ticks", 2, 60, NOW_MS))
    got = samples(h.metrics)
    assert got[("tickcast_ticks_total", ())] == 61
    assert got[("tickcast_predictions_total", ())] == 60
    assert got[("tickcast_dead_letters_total", (("reason", "bad_magic_byte"),))] == 1
    assert got[("tickcast_dead_letters_total", (("reason", "bad_price"),))] == 0, "every reason is exported from 0"
    ready = got[("tickcast_prediction_status_total", (("status", "READY"),))]
    warming = got[("tickcast_prediction_status_total", (("status", "WARMING_UP"),))]
    assert ready + warming == 60 and ready > 0 and warming > 0
    assert got[("tickcast_tick_processing_seconds_count", ())] == 61, "dead letters are timed too"
    assert got[("tickcast_end_to_end_latency_seconds_count", ())] == 60, "only emitted predictions have a latency"
    assert got[("tickcast_symbols", ())] == 1
    assert got[("tickcast_model_abs_error_bps", ())] >= 0
    assert h.counters.last_offsets == {2: 60}


def test_histogram_buckets_are_cumulative_and_cover_the_documented_ranges() -> None:
    assert PROCESSING_BUCKETS[0] == 1e-5 and PROCESSING_BUCKETS[-1] == 0.1
    assert LATENCY_BUCKETS[0] == 0.001 and LATENCY_BUCKETS[-1] == 10.0
    h = handler()
    # Produced 2 s before the worker saw them.
    feed(h, 5, produced_at_ms=time.time_ns() // 1_000_000 - 2000)
    got = samples(h.metrics)
    buckets = [got[("tickcast_end_to_end_latency_seconds_bucket", (("le", le),))] for le in ("1.0", "2.5", "+Inf")]
    assert buckets == [0, 5, 5]
    assert 10.0 <= got[("tickcast_end_to_end_latency_seconds_sum", ())] <= 12.5


def test_no_error_sample_until_a_forecast_is_scored() -> None:
    h = handler()
    feed(h, 1)
    assert ("tickcast_model_abs_error_bps", ()) not in samples(h.metrics)


def test_assignment_updates_gauges_and_forgets_offsets_of_partitions_that_moved() -> None:
    h = handler()
    feed(h, 3, partition=1)
    feed(h, 3, partition=5)
    h.metrics.consumer_lag = {1: 4, 5: 7}
    h.metrics.partitions_assigned([1, 2])
    got = samples(h.metrics)
    assert got[("tickcast_assigned_partitions", ())] == 2
    assert got[("tickcast_rebalances_total", ())] == 1
    assert h.counters.last_offsets == {1: 2}
    assert got[("tickcast_consumer_lag", (("partition", "1"),))] == 4
    assert ("tickcast_consumer_lag", (("partition", "5"),)) not in got


def test_each_worker_has_its_own_registry_and_labels() -> None:
    a, b = handler("a"), handler("b")
    feed(a, 4)
    got_a, got_b = samples(a.metrics), samples(b.metrics)
    assert got_a[("tickcast_ticks_total", ())] == 4 and got_b[("tickcast_ticks_total", ())] == 0
    info = [key for key in got_b if key[0] == "tickcast_worker_info"]
    assert info and dict(info[0][1])["worker"] == "b" and dict(info[0][1])["model"] == "linear"


def test_every_defined_series_is_exported_once_state_exists() -> None:
    h = handler()
    feed(h, 40)
    h.metrics.partitions_assigned([2])
    h.metrics.consumer_lag = {2: 0}
    exported = {name for name, _ in samples(h.metrics)}
    assert series_names() <= exported, f"defined but not exported: {sorted(series_names() - exported)}"


def test_the_workers_own_latency_is_exported_with_its_target_as_a_bucket_bound() -> None:
    # p99 <= 2 ms is the target (issue 18): with 2 ms as a bound, a bucket count says whether it holds.
    assert 0.002 in OWN_LATENCY_BUCKETS
    h = handler()
    for seconds in (0.0001, 0.0015, 0.003):
        h.counters.own_latency_seconds.observe(seconds)
    got = samples(h.metrics)
    assert got[("tickcast_worker_latency_seconds_count", ())] == 3
    assert got[("tickcast_worker_latency_seconds_bucket", (("le", "0.002"),))] == 2
