"""Optional sampling profile of a worker during a drain (``--profile``; needs ``pip install py-spy``).

py-spy samples only threads that are on CPU (no ``--idle``), so the summary says where the worker's
CPU time goes. It runs ``--nonblocking`` to leave the worker's timing alone as far as it can.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.core import BenchError
from tickcast.common.processes import spawn, stop

#: Leaf-frame file fragments -> the layer they belong to, first match wins.
LAYERS: tuple[tuple[str, str], ...] = (
    ("tickcast/predictor/features", "tickcast features"),
    ("tickcast/predictor/forecaster", "tickcast forecaster"),
    ("tickcast/predictor/metrics", "tickcast metrics"),
    ("tickcast/", "tickcast other"),
    ("river/", "river (model, stats)"),
    ("fastavro", "fastavro"),
    ("dataclasses", "dataclasses (asdict)"),
    ("faust/", "faust"),
    ("mode/", "mode"),
    ("aiokafka/", "aiokafka"),
    ("kafka/", "aiokafka"),
    ("asyncio/", "asyncio"),
    ("aiohttp/", "aiohttp"),
    ("structlog/", "logging"),
    ("logging/", "logging"),
)


def py_spy_binary() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.is_file() else shutil.which("py-spy")


class PySpy:
    """``py-spy record`` attached to one PID, writing collapsed stacks; stopped with SIGINT so it writes them."""

    def __init__(self, output: Path, rate: int = 200) -> None:
        binary = py_spy_binary()
        if binary is None:
            raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
        self.binary = binary
        self.output = output
        self.rate = rate
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def attach(self, pid: int) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.output.with_suffix(".log"), "ab")  # noqa: SIM115 - closed in stop()
        argv = [self.binary, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw"]
        self.process = spawn([*argv, "--output", str(self.output), "--nonblocking"], output=self._log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stop(self.process, grace_s=5)
        if self._log is not None:
            self._log.close()
            self._log = None


def _function(frame: str) -> tuple[str, str]:
    """('name', 'file') of a py-spy frame ``name (file:line)``."""
    name, _, location = frame.rpartition(" (")
    return (name or frame), location.rsplit(":", 1)[0]


def _layer(path: str) -> str:
    return next((layer for fragment, layer in LAYERS if fragment in path), "python stdlib / other")


#: Frames every stack passes through on its way to real work (entry point, event loop): not worth listing.
SCAFFOLDING_FILES = ("typer/", "click/", "<frozen runpy>", "mode/worker.py", "tickcast/__main__.py", "tickcast/cli/")
SCAFFOLDING_NAMES = (
    "BaseEventLoop.run_until_complete",
    "BaseEventLoop.run_forever",
    "BaseEventLoop._run_once",
    "Handle._run",
    "run_worker",
)


def summarise(
    raw_file: Path, ticks: int, rate: int, cpu_us_per_tick: float | None = None, top: int = 20
) -> dict[str, Any]:
    """Self and inclusive time per function, self time per layer, and time per event-loop callback.

    Shares are of on-CPU samples. py-spy also counts a thread that is runnable but waiting for a core
    as busy, so on a loaded machine samples/rate overstates CPU; µs per tick therefore spreads the CPU
    time measured from /proc (``cpu_us_per_tick``) by share, when it is given.
    """
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    callbacks: Counter[str] = Counter()
    total = 0
    for line in raw_file.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";")]
        total += count
        leaf_name, leaf_file = frames[-1]
        self_samples[f"{leaf_name} ({leaf_file})"] += count
        layers[_layer(leaf_file)] += count
        for name, path in set(frames):
            if name not in SCAFFOLDING_NAMES and not any(fragment in path for fragment in SCAFFOLDING_FILES):
                inclusive[f"{name} ({path})"] += count
        # What the event loop was running: the frame right after the innermost Handle._run.
        runs = [i for i, (name, _) in enumerate(frames) if name == "Handle._run"]
        if runs and runs[-1] + 1 < len(frames):
            name, path = frames[runs[-1] + 1]
            callbacks[f"{name} ({path})"] += count
        else:
            callbacks["event loop itself (select, scheduling)"] += count
    if total == 0:
        raise BenchError(f"py-spy wrote no samples to {raw_file}")
    sampled_us_per_tick = total / rate / max(ticks, 1) * 1e6
    scale = cpu_us_per_tick if cpu_us_per_tick else sampled_us_per_tick

    def table(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": key, "share": round(n / total, 4), "us_per_tick": round(n / total * scale, 1)}
            for key, n in counter.most_common(top)
        ]

    handler = next((n for key, n in inclusive.items() if key.startswith("TickHandler.handle ")), 0)
    return {
        "samples": total,
        "rate_hz": rate,
        "ticks": ticks,
        "sampled_us_per_tick": round(sampled_us_per_tick, 1),
        "cpu_us_per_tick": round(scale, 1),
        "handler_share": round(handler / total, 4),
        "handler_us_per_tick": round(handler / total * scale, 1),
        "layers": table(layers),
        "callbacks": table(callbacks),
        "top_self": table(self_samples),
        "top_inclusive": table(inclusive),
    }
