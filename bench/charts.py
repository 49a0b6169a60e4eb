"""PNG charts of the results (matplotlib, Agg backend: no display needed). One function per scenario."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.core import ScenarioResult


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _throughput(metrics: dict[str, Any], out: Path, plt: Any) -> None:
    fig, (bars, timeline) = plt.subplots(1, 2, figsize=(12, 4.5))
    runs = [("plain loop", metrics["plain"]), ("worker", metrics["worker"])]
    labels = [name for name, _ in runs]
    bars.bar(labels, [r["rate_per_s"] or 0 for _, r in runs], color=["#888888", "#1f77b4"])
    bars.set_ylabel("drain rate (ticks/s)")
    bars.set_title(f"worker / plain = {metrics['worker_over_plain']}")
    for i, (_, r) in enumerate(runs):
        bars.annotate(f"broker {r['broker_cores']} cores", (i, (r["rate_per_s"] or 0) / 2), ha="center")
    for name, r in runs:
        points = r["rate_timeline"]
        timeline.plot([p[0] for p in points], [p[1] for p in points], label=name)
    timeline.set_xlabel("seconds since first prediction")
    timeline.set_ylabel("predictions/s (by predicted_at)")
    timeline.legend()
    fig.tight_layout()
    fig.savefig(out)


def _scaleout(metrics: dict[str, Any], out: Path, plt: Any) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    one, two = metrics["one_worker"], metrics["two_workers"]
    labels = ["1 worker", "2 workers", "2 workers\n(both answering)"]
    values = [one["rate_per_s"] or 0, two["rate_per_s"] or 0, two["steady_rate_per_s"] or 0]
    ax.bar(labels, values, color=["#1f77b4", "#2ca02c", "#98df8a"])
    ax.set_ylabel("drain rate (ticks/s)")
    ax.set_title(f"2w/1w = {metrics['two_over_one']} (steady {metrics['two_over_one_steady']})")
    fig.tight_layout()
    fig.savefig(out)


def _scaling(metrics: dict[str, Any], out: Path, plt: Any) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    counts = sorted(metrics["by_workers"], key=int)
    rates = [metrics["by_workers"][n]["rate_per_s"] or 0 for n in counts]
    one = rates[0] if rates else 0
    ax.plot([int(n) for n in counts], rates, "o-", label="measured")
    ax.plot([int(n) for n in counts], [one * int(n) for n in counts], ":", color="#888888", label="linear")
    for n, rate in zip(counts, rates, strict=True):
        ax.annotate(
            metrics["by_workers"][n]["limit"], (int(n), rate), fontsize=8, textcoords="offset points", xytext=(0, 6)
        )
    ax.set_xlabel("worker processes")
    ax.set_ylabel("drain rate (ticks/s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)


def _latency(metrics: dict[str, Any], out: Path, plt: Any) -> None:
    fig, (ax, over_time) = plt.subplots(1, 2, figsize=(13, 4.5))
    rates = sorted(metrics["by_rate"], key=float)
    styles = {"p50_ms": ":", "p99_ms": "-", "p999_ms": "--"}
    for kind, colour in (("worker", "#1f77b4"), ("plain", "#888888")):
        for key, style in styles.items():
            ax.plot(
                [float(r) for r in rates],
                [metrics["by_rate"][r][kind][key] for r in rates],
                style,
                color=colour,
                marker="o",
                label=f"{kind} {key[:-3].replace('p999', 'p99.9')}",
            )
    ax.set_yscale("log")
    ax.set_xlabel("ticks/s")
    ax.set_ylabel("tick produced -> prediction received (ms)")
    ax.legend(fontsize=8)
    for rate in rates:
        for kind, style in (("worker", "-"), ("plain", ":")):
            points = metrics["by_rate"][rate][kind]["timeline"]
            over_time.plot([p[0] for p in points], [p[1] for p in points], style, label=f"{kind} {rate}/s p50")
    over_time.set_yscale("log")
    over_time.set_xlabel("second of the measurement (by tick produced)")
    over_time.set_ylabel("p50 latency in that second (ms)")
    over_time.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)


def _rebalance(metrics: dict[str, Any], out: Path, plt: Any) -> None:
    fig, ax = plt.subplots(figsize=(12, 4.5))
    timeline = metrics["timeline"]
    for worker, series in timeline["per_worker"].items():
        ax.plot([i * timeline["bin_s"] for i in range(len(series))], series, label=worker, linewidth=0.8)
    for name, at in metrics["events"].items():
        if name != "feed_started":
            ax.axvline(at, color="#d62728" if name == "kill" else "#555555", linestyle="--", linewidth=0.8)
            ax.annotate(name, (at, ax.get_ylim()[1] * 0.95), rotation=90, fontsize=8, va="top")
    ax.set_xlabel("seconds since the feed started")
    ax.set_ylabel(f"predictions/s ({timeline['bin_s']} s bins, arrival)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)


def _memory(metrics: dict[str, Any], out: Path, plt: Any) -> None:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    sizes = list(metrics["by_symbols"])
    ax.bar([f"{int(s):,} symbols" for s in sizes], [metrics["by_symbols"][s]["rss_kb_per_symbol"] for s in sizes])
    ax.axhline(20, color="#d62728", linestyle="--", label="target 20 KB")
    ax.set_ylabel("RSS per symbol (KB)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)


def _models(metrics: dict[str, Any], out: Path, plt: Any) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = list(metrics["by_model"])
    handler = [metrics["by_model"][n]["handler_us_per_tick"] for n in names]
    forecaster = [metrics["by_model"][n]["forecaster_us_per_tick"] for n in names]
    positions = range(len(names))
    ax.bar([p - 0.2 for p in positions], handler, width=0.4, label="whole handler")
    ax.bar([p + 0.2 for p in positions], forecaster, width=0.4, label="forecaster only")
    ax.set_xticks(list(positions), names)
    ax.set_ylabel("µs per tick (one core)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)


CHARTS: dict[str, Callable[[dict[str, Any], Path, Any], None]] = {
    "throughput": _throughput,
    "scaleout": _scaleout,
    "latency": _latency,
    "rebalance": _rebalance,
    "memory": _memory,
    "models": _models,
    "scaling": _scaling,
}


def draw(result: ScenarioResult, out_dir: Path) -> None:
    """Draw the scenario's chart into ``out_dir`` and list it on the result (relative to the Markdown)."""
    chart = CHARTS.get(result.name)
    if chart is None:
        return
    plt = _pyplot()
    path = out_dir / f"{result.name}.png"
    try:
        chart(result.metrics, path, plt)
    finally:
        plt.close("all")
    result.charts.append(path.name)


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
