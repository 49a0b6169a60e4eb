"""The soak's chart: feed and answer rates, lag, and workers' memory over time, with every fault marked."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FAULT_COLOURS = {"kill": "#d62728", "stop": "#ff7f0e"}


def rates(samples: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """Per-second rate of a cumulative counter between consecutive samples.

    >>> rates([{"t": 0, "sent": 0}, {"t": 2, "sent": 10}], "sent")
    ([2], [5.0])
    """
    times, values = [], []
    for before, after in itertools.pairwise(samples):
        span = after["t"] - before["t"]
        if span > 0:
            times.append(after["t"])
            values.append((after[key] - before[key]) / span)
    return times, values


def draw(samples: Sequence[dict[str, Any]], faults: Sequence[dict[str, Any]], out: Path, title: str) -> None:
    """Three panels sharing the time axis; a red line per kill -9, an orange band per freeze."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (flow, lag, memory) = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
    for key, label in (("sent", "ticks sent/s"), ("answered", "ticks answered/s (distinct)")):
        flow.plot(*rates(samples, key), label=label, linewidth=0.8)
    flow.set_ylabel("per second")
    flow.legend(loc="upper right")
    lag.plot([s["t"] for s in samples], [s["lag"] for s in samples], color="#9467bd", linewidth=0.8)
    lag.set_ylabel("lag (ticks not answered)")
    workers = sorted({name for s in samples for name in s["rss"]})
    for name in workers:
        points = [(s["t"], s["rss"][name] / 1e6) for s in samples if name in s["rss"]]
        memory.plot([t for t, _ in points], [mb for _, mb in points], label=name, linewidth=0.8)
    memory.set_ylabel("worker RSS (MB)")
    memory.set_xlabel("seconds since the feed started")
    memory.legend(loc="lower right", fontsize="small", ncol=4)
    for fault in faults:
        for ax in (flow, lag, memory):
            if fault["kind"] == "kill":
                ax.axvline(fault["at_s"], color=FAULT_COLOURS["kill"], linewidth=0.8, alpha=0.7)
            else:
                ax.axvspan(fault["at_s"], fault["at_s"] + fault["seconds"], color=FAULT_COLOURS["stop"], alpha=0.2)
    fig.suptitle(f"soak: {title}\nred: kill -9, orange: SIGSTOP", fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
