"""Many SSE clients for the bench, spread over processes: asyncio protocols, each measuring its events' delay.

Run as ``python -m tickcast.testing.sse_load URL CLIENTS SECONDS SYMBOLS [--processes=N] [--warmup=S]
[--reader=kernel|asyncio] [--every-symbol]`` (processes of its own, so the gateway's CPU is not shared with the
load); prints one JSON line: events, delay percentiles, clients that connected and failed, events out of order
or repeated (by their ids), and the load's own CPU seconds. Delay = received (this clock) - ``predicted_at``
(the worker's clock, the same machine in the bench). Client ``n`` subscribes to ``SYMBOLS[n % len]``, or with
``--every-symbol`` to all of them (one stream over every partition).

The receipt time is taken when a chunk is read, and nothing is parsed until the window ends. Two readers:
``kernel`` (default, :mod:`tickcast.testing.sse_kernel`) also has the kernel stamp each read with the time its
bytes reached the socket, so the load's own lag (read time less arrival time) is measured, and the delay
(``delay_ms_*``, from the kernel's stamp) holds none of it; ``asyncio`` (the reader before it) has only the read
time, which counts the load's waits for a core as the gateway's.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tickcast.testing.sse_kernel import Read, open_streams, read_until, stamped

#: A prediction event: its id (``partition:offset`` pairs), and its ``predicted_at`` (us), in one pass over the bytes.
_EVENT = re.compile(rb'id: ([\d:,]+)\nevent: prediction\ndata: [^\n]*?"predicted_at":(\d+)')
#: A chunk as read: when (ms, this clock) and its bytes.
Received = tuple[float, bytes]
#: The readers :func:`run` knows (see the module's docstring).
READERS = ("kernel", "asyncio")


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
    request = request_of(host, path)
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


def id_order(event_id: bytes) -> int:
    """A number that grows with every event of one stream: the sum of the offsets in its id (each partition's
    position only moves forward, and each event moves one).

    >>> id_order(b"3:41"), id_order(b"0:12,3:40")
    (41, 52)
    """
    return sum(int(pair.rpartition(b":")[2]) for pair in event_id.split(b","))


def delays_of(chunks: list[Received], from_ms: float = 0.0) -> tuple[list[float], int]:
    """Each whole prediction event's delay (ms): the time its last byte was read less its ``predicted_at``, for
    events read at or after ``from_ms``; and how many events (all of them) came out of order or twice, by their
    ``id`` (:func:`id_order`).

    An event split over two chunks counts from the chunk that completed it.

    >>> first = b'id: 0:1\\nevent: prediction\\ndata: {"predicted_at":4000'
    >>> delays_of([(10.0, first), (12.0, b'}\\n\\nid: 0:2\\nevent: prediction\\ndata: {"predicted_at":5000}\\n\\n')])
    ([8.0, 7.0], 0)
    >>> again = b'id: 0:2\\nevent: prediction\\ndata: {"predicted_at":5000}\\n\\n'
    >>> delays_of([(10.0, again), (12.0, again)], 11.0)
    ([7.0], 1)
    >>> every = b'id: 0:7,1:2\\nevent: prediction\\ndata: {"predicted_at":5000}\\n\\n'
    >>> delays_of([(10.0, every), (11.0, every.replace(b"1:2", b"1:3"))])
    ([5.0, 6.0], 0)
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
        for event_id, us in _EVENT.findall(text, 0, cut):
            number = id_order(event_id)
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
    """What one process of the load measured: ``delays`` from the kernel's receipt stamps (the read times
    with the asyncio reader), ``read_delays`` from the read times, ``lags`` each counted read's time less its
    kernel stamp (ms; empty with the asyncio reader)."""

    delays: list[float]
    connected: int
    failed: int
    load_cpu_s: float
    all_connected_after_s: float | None = None
    out_of_order: int = 0
    read_delays: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)


def request_of(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()


def run_kernel_clients(url: str, paths: list[str], until: float, from_ms: float = 0.0) -> Share:
    """One process's share with the kernel-stamped reader (:mod:`tickcast.testing.sse_kernel`)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reads: list[list[Read]] = [[] for _ in paths]
    started = time.monotonic()
    streams = open_streams(host, port, [request_of(host, path) for path in paths], reads)
    firsts = read_until(streams, until)
    cpu_s = time.process_time()  # the window's CPU, before the parsing below
    received = [stamped(chunks) for chunks in reads]
    by_kernel = [delays_of([(kernel, data) for kernel, _, data in chunks], from_ms) for chunks in received]
    by_read = [delays_of([(read, data) for _, read, data in chunks], from_ms)[0] for chunks in received]
    return Share(
        delays=[delay for delays, _ in by_kernel for delay in delays],
        read_delays=[delay for delays in by_read for delay in delays],
        lags=[read - kernel for chunks in received for kernel, read, _ in chunks if kernel >= from_ms],
        all_connected_after_s=max(firsts.values()) - started if firsts else None,
        connected=sum(1 for chunks in received if chunks and status_of([(0.0, chunks[0][2])]) == 200),
        failed=streams.failed,
        load_cpu_s=cpu_s,
        out_of_order=sum(disorder for _, disorder in by_kernel),
    )


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
    delays = [delay for delays, _ in measured for delay in delays]
    return Share(
        delays=delays,
        read_delays=delays,
        all_connected_after_s=max(firsts) - started if firsts else None,
        connected=sum(1 for chunks in received if status_of(chunks) == 200),
        failed=len(opened) - len(streams),
        load_cpu_s=cpu_s,
        out_of_order=sum(disorder for _, disorder in measured),
    )


def _share(job: tuple[str, list[str], float, float, str]) -> Share:
    *clients, reader = job
    if reader == "kernel":
        return run_kernel_clients(*clients)  # type: ignore[arg-type]  # url, paths, until, from_ms
    # uvloop where installed (the gateway's own loop): less of the load's CPU per read.
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_clients(*clients))  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_clients(*clients))  # type: ignore[arg-type]


def run(
    url: str,
    clients: int,
    seconds: float,
    symbols: list[str],
    processes: int = 1,
    warmup_s: float = 0.0,
    reader: str = "kernel",
    every_symbol: bool = False,
) -> dict[str, object]:
    """``clients`` clients (client ``n`` on ``symbols[n % len]``, or each on all of them) over ``processes``
    processes for ``seconds``; delays are counted after ``warmup_s``. A thousand clients connecting cost the
    gateway a burst of CPU that delays everyone already streaming: a steady-state delay starts counting after it
    (``all_connected_after_s`` says whether the warm-up was long enough)."""
    if reader not in READERS:
        raise ValueError(f"reader {reader!r}: expected one of {READERS}")
    wanted = [",".join(symbols)] if every_symbol else symbols
    paths = [f"/v1/stream?symbols={wanted[n % len(wanted)]}" for n in range(clients)]
    processes = max(1, min(processes, clients))
    until = time.monotonic() + seconds  # CLOCK_MONOTONIC: the same clock in every process of the machine
    from_ms = (time.time() + warmup_s) * 1000.0
    jobs = [(url, paths[n::processes], until, from_ms, reader) for n in range(processes)]
    if processes == 1:
        shares = [_share(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            shares = pool.map(_share, jobs)
    delays = [delay for share in shares for delay in share.delays]
    read_delays = [delay for share in shares for delay in share.read_delays]
    lags = [lag for share in shares for lag in share.lags]
    return {
        "clients": clients,
        "processes": processes,
        "reader": reader,
        "every_symbol": every_symbol,
        "connected": sum(share.connected for share in shares),
        "failed": sum(share.failed for share in shares),
        "out_of_order": sum(share.out_of_order for share in shares),
        "warmup_s": warmup_s,
        "all_connected_after_s": max((share.all_connected_after_s or 0.0 for share in shares), default=None),
        "events": len(delays),
        "delay_ms_p50": percentile(delays, 0.5),
        "delay_ms_p99": percentile(delays, 0.99),
        # The same events by the time the load read them: with the kernel reader, what the load's own waits add.
        "read_delay_ms_p50": percentile(read_delays, 0.5),
        "read_delay_ms_p99": percentile(read_delays, 0.99),
        "load_lag_ms_p50": percentile(lags, 0.5),
        "load_lag_ms_p99": percentile(lags, 0.99),
        "load_lag_ms_max": max(lags, default=None),
        # Whether the load itself kept up: its CPU seconds over the window (a core is `seconds` of them).
        "load_cpu_s": round(sum(share.load_cpu_s for share in shares), 2),
    }


if __name__ == "__main__":
    url, clients, seconds, symbols = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    flags = {arg for arg in sys.argv[1:] if arg.startswith("--") and "=" not in arg}
    options = dict(arg.removeprefix("--").split("=", 1) for arg in sys.argv[1:] if arg.startswith("--") and "=" in arg)
    count, warmup = int(options.get("processes", 1)), float(options.get("warmup", 0))
    reader, every = options.get("reader", "kernel"), "--every-symbol" in flags
    print(json.dumps(run(url, int(clients), float(seconds), symbols.split(","), count, warmup, reader, every)))
