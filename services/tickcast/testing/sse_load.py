"""Many SSE clients in one process, for the bench: raw asyncio sockets, each measuring its events' delay.

Run as ``python -m tickcast.testing.sse_load URL CLIENTS SECONDS SYMBOLS`` (a process of its own, so the
gateway's CPU is not shared with the load); prints one JSON line: events, delay percentiles, clients that
connected and clients that failed. Delay = received (this clock) - ``predicted_at`` (the worker's clock,
the same machine in the bench).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from urllib.parse import urlsplit

_PREDICTED_AT = re.compile(rb'"predicted_at":(\d+)')


async def one_client(host: str, port: int, path: str, until: float, delays: list[float], status: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    status.append(int(status_line.split()[1]))
    try:
        # Whole chunks, not lines: the load process must cost far less CPU than the gateway it measures.
        async with asyncio.timeout(max(0.0, until - time.monotonic())):
            tail = b""
            while chunk := await reader.read(65_536):
                received_ms = time.time() * 1000.0
                text = tail + chunk
                end = text.rfind(b"\n\n")  # only whole events; the rest waits for the next chunk
                cut = end + 2 if end >= 0 else 0
                delays.extend(received_ms - int(us) / 1000.0 for us in _PREDICTED_AT.findall(text, 0, cut))
                tail = text[cut:]
    except TimeoutError:
        pass  # the measurement window ended
    finally:
        writer.close()


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank.

    >>> percentile([5.0, 1.0, 3.0], 0.5)
    3.0
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(url: str, clients: int, seconds: float, symbols: list[str]) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    until = time.monotonic() + seconds
    delays: list[float] = []
    status: list[int] = []
    tasks = [
        one_client(host, port, f"/v1/stream?symbols={symbols[n % len(symbols)]}", until, delays, status)
        for n in range(clients)
    ]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "clients": clients,
        "connected": sum(1 for s in status if s == 200),
        "failed": sum(1 for r in results if isinstance(r, BaseException)),
        "events": len(delays),
        "delay_ms_p50": percentile(delays, 0.5),
        "delay_ms_p99": percentile(delays, 0.99),
        # Whether the load itself kept up: its CPU seconds over the window (a core is `seconds` of them).
        "load_cpu_s": round(time.process_time(), 2),
    }


if __name__ == "__main__":
    url, clients, seconds, symbols = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4].split(",")
    print(json.dumps(asyncio.run(run(url, clients, seconds, symbols))))
