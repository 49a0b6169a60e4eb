"""Many SSE clients for the bench, spread over processes: asyncio protocols, each measuring its events' delay.

Run as ``python -m tickcast.testing.sse_load URL CLIENTS SECONDS SYMBOLS [--processes=N] [--warmup=S]``
(processes of its own, so the gateway's CPU is not shared with the load); prints one JSON line: events,
delay percentiles, clients that connected and failed, events out of order or repeated (by their ids), and
the load's own CPU seconds. Delay = received
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

#: A prediction event: the offset in its id, and its ``predicted_at`` (us), in one pass over the bytes.
_EVENT = re.compile(rb'id: \d+:(\d+)\nevent: prediction\ndata: [^\n]*?"predicted_at":(\d+)')
#: A chunk as read: when (ms, this clock) and its bytes.
Received = tuple[float, bytes]


class _Stream(asyncio.Protocol):
    """One SSE client: sends its request, then only stamps and keeps each chunk as it arrives.

    A protocol's ``data_received`` is one plain call per read, where a stream reader's ``read`` costs a future,
    a task switch and a buffer copy each; with 1,000 clients over 2 cores that was a quarter of a core of the
    load's own, which it took from the gateway it measures.
    """

    def __init__(self, request: bytes, chunks: list[Received]) -> None:
        self.request = request
        self.chunks = chunks
        self.transport: asyncio.Transport | None = None
        self.first_at: float | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP connection's transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.first_at is None:
            self.first_at = time.monotonic()
        self.chunks.append((time.time() * 1000.0, data))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def one_client(host: str, port: int, path: str, chunks: list[Received]) -> _Stream:
    """Open one stream; what it reads goes to ``chunks`` until its transport is closed."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_connection(lambda: _Stream(request, chunks), host, port)
    return stream


def status_of(chunks: list[Received]) -> int | None:
    """The HTTP status of a stream from its first chunk (None if it read nothing).

    >>> status_of([(1.0, b"HTTP/1.1 200 OK\\r\\n")]), status_of([])
    (200, None)
    """
    if not chunks:
        return None
    return int(chunks[0][1].split(b" ", 2)[1])


def delays_of(chunks: list[Received], from_ms: float = 0.0) -> tuple[list[float], int]:
    """Each whole prediction event's delay (ms): the time its last byte was read less its ``predicted_at``, for
    events read at or after ``from_ms``; and how many events (all of them) came out of order or twice, by the
    offset in their ``id`` (one partition per stream: ``partition:offset``).

    An event split over two chunks counts from the chunk that completed it.

    >>> first = b'id: 0:1\\nevent: prediction\\ndata: {"predicted_at":4000'
    >>> delays_of([(10.0, first), (12.0, b'}\\n\\nid: 0:2\\nevent: prediction\\ndata: {"predicted_at":5000}\\n\\n')])
    ([8.0, 7.0], 0)
    >>> again = b'id: 0:2\\nevent: prediction\\ndata: {"predicted_at":5000}\\n\\n'
    >>> delays_of([(10.0, again), (12.0, again)], 11.0)
    ([7.0], 1)
    """
    delays: list[float] = []
    disorder = 0
    last = -1
    tail = b""
    for received_ms, chunk in chunks:
        text = tail + chunk
        end = text.rfind(b"\n\n")  # only whole events; the rest waits for the next chunk
        cut = end + 2 if end >= 0 else 0
        counted = received_ms >= from_ms
        for offset, us in _EVENT.findall(text, 0, cut):
            number = int(offset)
            disorder += number <= last
            last = number
            if counted:
                delays.append(received_ms - int(us) / 1000.0)
        tail = text[cut:]
    return delays, disorder


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
    out_of_order: int = 0


async def run_clients(url: str, paths: list[str], until: float, from_ms: float = 0.0) -> Share:
    """One process's share: its clients until ``until`` (monotonic), then the delays of events read from
    ``from_ms`` (wall clock, ms) on, parsed only now."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    received: list[list[Received]] = [[] for _ in paths]
    started = time.monotonic()
    opened = await asyncio.gather(
        *(one_client(host, port, path, chunks) for path, chunks in zip(paths, received, strict=True)),
        return_exceptions=True,
    )
    streams = [stream for stream in opened if isinstance(stream, _Stream)]
    # One timer for the whole window, not one per client.
    await asyncio.sleep(max(0.0, until - time.monotonic()))  # the measurement window itself
    cpu_s = time.process_time()  # the window's CPU, before the parsing below
    for stream in streams:
        if stream.transport is not None:
            stream.transport.abort()
    firsts = [stream.first_at for stream in streams if stream.first_at is not None]
    measured = [delays_of(chunks, from_ms) for chunks in received]
    return Share(
        delays=[delay for delays, _ in measured for delay in delays],
        all_connected_after_s=max(firsts) - started if firsts else None,
        connected=sum(1 for chunks in received if status_of(chunks) == 200),
        failed=len(opened) - len(streams),
        load_cpu_s=cpu_s,
        out_of_order=sum(disorder for _, disorder in measured),
    )


def _share(job: tuple[str, list[str], float, float]) -> Share:
    # uvloop where installed (the gateway's own loop): less of the load's CPU per read.
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_clients(*job))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_clients(*job))


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
        "out_of_order": sum(share.out_of_order for share in shares),
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
