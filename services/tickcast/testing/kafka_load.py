"""Many clients each reading Kafka itself (``TickcastClient.kafka``), in one process, for the bench.

Run as ``python -m tickcast.testing.kafka_load CLIENTS SECONDS SYMBOLS`` with the pipeline's environment
(``TICKCAST_BOOTSTRAP_SERVERS`` etc.): client ``n`` subscribes to ``SYMBOLS[n % len]``, each with a Kafka
consumer of its own, as a trading system without a gateway would. Prints one JSON line: clients and
predictions received. The broker's CPU meanwhile is what ``bench.gateway`` compares with one gateway.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from tickcast.client.client import TickcastClient
from tickcast.client.settings import ClientSettings


async def one_client(settings: ClientSettings, symbol: str, counts: list[int], index: int) -> None:
    client = TickcastClient.kafka(settings)
    async for _ in client.subscribe([symbol]):
        counts[index] += 1


async def run(clients: int, seconds: float, symbols: list[str]) -> dict[str, object]:
    settings = ClientSettings()
    counts = [0] * clients
    tasks = [asyncio.create_task(one_client(settings, symbols[n % len(symbols)], counts, n)) for n in range(clients)]
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0 and not any(task.done() for task in tasks):
        await asyncio.wait(tasks, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
    failed = [task for task in tasks if task.done() and task.exception() is not None]
    # Its own CPU (every consumer thread): a hundred librdkafka clients are not free for the machine either.
    return {
        "clients": clients,
        "failed": len(failed),
        "events": sum(counts),
        "load_cpu_s": round(time.process_time(), 2),
    }


def main(argv: list[str]) -> None:
    count, window, names = int(argv[0]), float(argv[1]), argv[2].split(",")
    loop = asyncio.new_event_loop()
    print(json.dumps(loop.run_until_complete(run(count, window, names))), flush=True)
    # No group to leave and nothing committed: closing a hundred consumers one after another would only make
    # the bench wait (asyncio.run would cancel every subscription and close each consumer in turn).
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
