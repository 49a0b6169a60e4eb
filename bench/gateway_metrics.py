"""What ``bench.gateway`` reads off the gateway around a window: its ``/metrics`` (loop lag, GC pauses) and
how long each of its threads waited for a CPU (the kernel's per-thread schedstat)."""

from __future__ import annotations

from typing import Any

import httpx

from bench.gateway_load import bucket_quantile, histogram_buckets, observed, sched_delta
from tickcast.testing.gateway import GatewayProcess


def busy_threads(before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]) -> dict[str, Any]:
    """The gateway's threads that used 10 ms of CPU or more in the window (the event loop is ``main``): how long
    each waited for a core. A loop thread that waits milliseconds per wake-up makes a GET tail the gateway's
    own code cannot shorten.

    >>> busy_threads({"main": (0, 0, 0), "x/2": (0, 0, 0)}, {"main": (10**9, 10**7, 10), "x/2": (10**6, 0, 1)})
    {'main': {'cpu_s': 1.0, 'runqueue_wait_s': 0.01, 'slices': 10, 'wait_ms_per_slice': 1.0}}
    """
    return {name: found for name, found in sched_delta(before, after).items() if found["cpu_s"] >= 0.01}


FANOUT = "tickcast_gateway_fanout_delay_seconds"
LOOP_LAG = "tickcast_gateway_loop_lag_seconds"
GC_PAUSE = "tickcast_gateway_gc_pause_seconds"


def scrape(gateway: GatewayProcess) -> str:
    """The gateway's ``/metrics`` text; empty if it did not answer in 30 s (its loop stalled that long:
    the phase's numbers then say so)."""
    try:
        return httpx.get(f"{gateway.url}/metrics", timeout=30).text
    except httpx.TimeoutException:
        return ""


def stalls(before: str, after: str) -> dict[str, Any]:
    """The gateway's event-loop stalls between two scrapes: loop lag percentiles (bucket bounds, ms), lags
    over 5 ms, and GC pauses by generation (count, and how many over 5 ms)."""
    lag_before, lag_after = histogram_buckets(before, LOOP_LAG), histogram_buckets(after, LOOP_LAG)
    found: dict[str, Any] = {
        "loop_lag_p50_ms_bucket_upper": bucket_quantile(lag_before, lag_after, 0.5),
        "loop_lag_p99_ms_bucket_upper": bucket_quantile(lag_before, lag_after, 0.99),
        "loop_lags_over_5ms": observed(lag_before, lag_after, 0.005),
    }
    for generation in ("0", "1", "2"):
        labels = f'generation="{generation}",'
        pause_before, pause_after = (
            histogram_buckets(before, GC_PAUSE, labels),
            histogram_buckets(after, GC_PAUSE, labels),
        )
        if pause_after:
            found[f"gc{generation}_pauses"] = observed(pause_before, pause_after)
            found[f"gc{generation}_pauses_over_5ms"] = observed(pause_before, pause_after, 0.005)
    return found


def gap_ms(sse: dict[str, Any], clients: int) -> dict[str, float | None]:
    """The target's number: the many clients' p99 less one client's, by the kernel's receipt stamps
    (``p99``) and by the load's read times (``p99_read``, which hold the load's own waits).

    >>> gap_ms({"sse_1_client": {"delay_ms_p99": 90.0}, "sse_5_clients": {"delay_ms_p99": 130.5}}, 5)
    {'p99': 40.5, 'p99_read': None}
    """
    one, many = sse.get("sse_1_client", {}), sse.get(f"sse_{clients}_clients", {})

    def gap(name: str) -> float | None:
        if one.get(name) is None or many.get(name) is None:
            return None
        return round(float(many[name]) - float(one[name]), 1)

    return {"p99": gap("delay_ms_p99"), "p99_read": gap("read_delay_ms_p99")}
