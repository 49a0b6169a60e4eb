"""Where a tick's latency goes, second by second from the paced feed's start (its warm-up included).

Each answered tick is split at the two stamps the bench has besides its own arrival time:

* **produced → acked**: the feed producer's linger, sending, and the broker's append, as librdkafka
  measures it for the delivery report (``Message.latency()``);
* **acked → predicted**: the processor's fetch (how long the broker held it) and its own queueing up
  to the stamp ``predicted_at``;
* **predicted → received**: the processor's producer linger, the broker, and the tap's fetch.

A slow start shows up in the first rows: a producer still connecting holds its first ticks (a large
produced → acked), a processor still warming up holds them after the broker has them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from bench.measures import percentile
from bench.taps import Seen

STAGES = ("total", "acked", "to_predicted", "to_received")


def stage_times(seen: Seen, acked_ms: float) -> dict[str, float]:
    """One tick's latency (ms) in all and per stage.

    >>> s = Seen(received_s=1.030, symbol="A", partition=0, offset=0, produced_ms=1000, predicted_us=1_020_000,
    ...          worker="w")
    >>> stage_times(s, acked_ms=6.0)
    {'total': 30.0, 'acked': 6.0, 'to_predicted': 14.0, 'to_received': 10.0}
    """
    predicted_ms = seen.predicted_us / 1000
    return {
        "total": round(seen.received_s * 1000 - seen.produced_ms, 3),
        "acked": acked_ms,
        "to_predicted": round(predicted_ms - seen.produced_ms - acked_ms, 3),
        "to_received": round(seen.received_s * 1000 - predicted_ms, 3),
    }


def by_second(
    seen: Iterable[Seen],
    acked_ms: Mapping[tuple[int, int], float],
    started_ms: float,
    seconds: int,
    warmup_s: float = 0.0,
) -> list[dict[str, Any]]:
    """Per second of the feed (by when a tick was produced), for the first ``seconds``: ticks answered, and
    p50/p99 (ms) of each stage; ticks without a delivery report are left out. Seconds before ``warmup_s``
    are marked ``warm_up``: the scenario's percentiles leave their ticks out.

    >>> s = [Seen(1.0 + i / 1000, "A", 0, i, 980 + i, 990_000 + 1000 * i, "w") for i in range(3)]
    >>> rows = by_second(s, {(0, i): 5.0 for i in range(3)}, started_ms=0.0, seconds=2, warmup_s=1.0)
    >>> rows[0]["second"], rows[0]["warm_up"], rows[0]["ticks"], rows[0]["total_p50_ms"], rows[0]["to_predicted_p99_ms"]
    (0, True, 3, 20.0, 5.0)
    """
    times: dict[int, list[dict[str, float]]] = defaultdict(list)
    for s in seen:
        second = int((s.produced_ms - started_ms) // 1000)
        acked = acked_ms.get((s.partition, s.offset))
        if 0 <= second < seconds and acked is not None:
            times[second].append(stage_times(s, acked))
    rows = []
    for second, ticks in sorted(times.items()):
        row: dict[str, Any] = {"second": second, "warm_up": second < warmup_s, "ticks": len(ticks)}
        for stage in STAGES:
            values = [t[stage] for t in ticks]
            row[f"{stage}_p50_ms"] = round(percentile(values, 50), 1)
            row[f"{stage}_p99_ms"] = round(percentile(values, 99), 1)
        rows.append(row)
    return rows


def describe(kind: str, rate: str, rows: list[dict[str, Any]], own_by_second: Mapping[int, float | None]) -> str:
    """One note line: per second, ticks and p50/p99 of each stage, and the processor's own-share p99."""
    parts = [
        f"{r['second']}{' (warm-up)' if r.get('warm_up') else ''}: {r['ticks']}, "
        + ", ".join(f"{r[f'{stage}_p50_ms']}/{r[f'{stage}_p99_ms']}" for stage in STAGES)
        + f", own {own_by_second.get(r['second'])}"
        for r in rows
    ]
    return (
        f"{kind} at {rate}/s, per second from the feed's start, warm-up included (left out of every p99 above) "
        "(second: ticks, p50/p99 ms of total, produced → acked, acked → predicted, predicted → received; "
        "own share p99 ms): " + "; ".join(parts)
    )
