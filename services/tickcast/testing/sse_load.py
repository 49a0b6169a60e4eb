"""Many SSE clients for the bench, spread over processes: raw asyncio sockets, each measuring its events' delay.

Run as ``python -m tickcast.testing.sse_load URL CLIENTS SECONDS SYMBOLS [--processes=N] [--warmup=S]``
(processes of its own, so the gateway's CPU is not shared with the load); prints one JSON line: events,
delay percentiles, clients that connected and failed, and the load's own CPU seconds. Delay = received
(this clock) - ``predicted_at`` (the worker's clock, the same machine in the bench).

The receipt time is taken when a chunk is read, and nothing is parsed until the window ends, so no work of
the load's own sits between a read and its timestamp. (Measured before this: the one-process load used
2.1 s of CPU in 20 s with 1,000 clients, so it was not what made the delay; now it cannot be.)
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

_PREDICTED_AT = re.compile(rb'"predicted_at":(\d+)')
#: A chunk as read: when (ms, this clock) and its bytes.
Received = tuple[float, bytes]


async def one_client(
    host: str, port: int, path: str, until: float, chunks: list[Received], status: list[int], connected: list[float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    status.append(int(status_line.split()[1]))
    connected.append(time.monotonic())
    try:
        async with asyncio.timeout(max(0.0, until - time.monotonic())):
            while chunk := await reader.read(65_536):
                chunks.append((time.time() * 1000.0, chunk))
    except TimeoutError:
        pass  # the measurement window ended
    finally:
        writer.close()


def delays_of(chunks: list[Received], from_ms: float = 0.0) -> list[float]:
    """Each whole event's delay (ms): the time its last byte was read less its ``predicted_at``; only events
    read at or after ``from_ms``.

    An event split over two chunks counts from the chunk that completed it.

    >>> delays_of([(10.0, b'data: {"predicted_at":4000'), (12.0, b'}\\n\\ndata: {"predicted_at":5000}\\n\\n')])
    [8.0, 7.0]
    >>> delays_of([(10.0, b'data: {"predicted_at":4000}\\n\\n'), (12.0, b'data: {"predicted_at":5000}\\n\\n')], 11.0)
    [7.0]
    """
    delays: list[float] = []
    tail = b""
    for received_ms, chunk in chunks:
        text = tail + chunk
        end = text.rfind(b"\n\n")  # only whole events; the rest waits for the next chunk
        cut = end + 2 if end >= 0 else 0
        if received_ms >= from_ms:
            delays.extend(received_ms - int(us) / 1000.0 for us in _PREDICTED_AT.findall(text, 0, cut))
        tail = text[cut:]
    return delays


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank.

    >>> percentile([5.0, 1.0, 3.0], 0.5)
    3.0
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class Share:
    """What one process of the load measured."""

    delays: list[float]
    connected: int
    failed: int
    load_cpu_s: float
    all_connected_after_s: float | None = None


async def run_clients(url: str, paths: list[str], until: float, from_ms: float = 0.0) -> Share:
    """One process's share: its clients until ``until`` (monotonic), then the delays of events read from
    ``from_ms`` (wall clock, ms) on, parsed only now."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    received: list[list[Received]] = [[] for _ in paths]
    status: list[int] = []
    connected: list[float] = []
    started = time.monotonic()
    results = await asyncio.gather(
        *(
            one_client(host, port, path, until, chunks, status, connected)
            for path, chunks in zip(paths, received, strict=True)
        ),
        return_exceptions=True,
    )
    cpu_s = time.process_time()  # the window's CPU, before the parsing below
    return Share(
        delays=[delay for chunks in received for delay in delays_of(chunks, from_ms)],
        all_connected_after_s=max(connected) - started if connected else None,
        connected=sum(1 for s in status if s == 200),
        failed=sum(1 for r in results if isinstance(r, BaseException)),
        load_cpu_s=cpu_s,
    )


def _share(job: tuple[str, list[str], float, float]) -> Share:
    return asyncio.run(run_clients(*job))


def run(
    url: str, clients: int, seconds: float, symbols: list[str], processes: int = 1, warmup_s: float = 0.0
) -> dict[str, object]:
    """``clients`` clients (client ``n`` on ``symbols[n % len]``) over ``processes`` processes for ``seconds``;
    delays are counted after ``warmup_s``. A thousand clients connecting cost the gateway a burst of CPU that
    delays everyone already streaming: a steady-state delay starts counting after it (``all_connected_after_s``
    says whether the warm-up was long enough)."""
    paths = [f"/v1/stream?symbols={symbols[n % len(symbols)]}" for n in range(clients)]
    processes = max(1, min(processes, clients))
    until = time.monotonic() + seconds  # CLOCK_MONOTONIC: the same clock in every process of the machine
    from_ms = (time.time() + warmup_s) * 1000.0
    jobs = [(url, paths[n::processes], until, from_ms) for n in range(processes)]
    if processes == 1:
        shares = [_share(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            shares = pool.map(_share, jobs)
    delays = [delay for share in shares for delay in share.delays]
    return {
        "clients": clients,
        "processes": processes,
        "connected": sum(share.connected for share in shares),
        "failed": sum(share.failed for share in shares),
        "warmup_s": warmup_s,
        "all_connected_after_s": max((share.all_connected_after_s or 0.0 for share in shares), default=None),
        "events": len(delays),
        "delay_ms_p50": percentile(delays, 0.5),
        "delay_ms_p99": percentile(delays, 0.99),
        # Whether the load itself kept up: its CPU seconds over the window (a core is `seconds` of them).
        "load_cpu_s": round(sum(share.load_cpu_s for share in shares), 2),
    }


if __name__ == "__main__":
    options = dict(arg.removeprefix("--").split("=", 1) for arg in sys.argv[1:] if arg.startswith("--"))
    url, clients, seconds, symbols = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    count, warmup = int(options.get("processes", 1)), float(options.get("warmup", 0))
    print(json.dumps(run(url, int(clients), float(seconds), symbols.split(","), count, warmup)))
