"""A gateway without Kafka, for browser tests and the bench: synthetic predictions fed in on its event loop."""

from __future__ import annotations

import asyncio
import math
import random
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI

from tickcast.common.processes import free_port
from tickcast.common.records import Prediction
from tickcast.gateway.cache import Published
from tickcast.gateway.feed import PredictionFeed
from tickcast.testing.waiting import wait_for


@dataclass
class SyntheticPredictions:
    """A gateway source: a random walk per symbol and a model that roughly follows it, ``rate`` per second each.

    Stops by itself after ``count`` predictions per symbol, or at :meth:`stop`.
    """

    symbols: Sequence[str]
    rate: float = 20.0
    count: int = 10_000
    seed: int = 7
    published: int = 0
    _task: asyncio.Task[None] | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start(self, feed: PredictionFeed) -> None:
        for partition in feed.partitions:
            feed.reached_end(partition, 0)
        self._task = asyncio.get_running_loop().create_task(self._run(feed))

    def stop(self) -> None:
        self._stopped.set()
        if self._task is not None:
            self._task.cancel()

    @property
    def done(self) -> bool:
        return self._stopped.is_set()

    async def _run(self, feed: PredictionFeed) -> None:
        rng = random.Random(self.seed)  # nosec B311 # fake predictions for tests, reproducible from a seed
        prices = {s: 50.0 + 100.0 * rng.random() for s in self.symbols}
        drift = dict.fromkeys(self.symbols, 0.0)
        for n in range(self.count):
            if self._stopped.is_set():
                break
            for symbol in self.symbols:
                step = rng.gauss(0.0, 8.0) + 0.3 * drift[symbol]
                drift[symbol] = step
                prices[symbol] *= math.exp(step / 1e4)
                forecast_bps = 0.3 * step + rng.gauss(0.0, 2.0)
                partition = feed.partition_of(symbol)
                now_us = time.time_ns() // 1000
                prediction = Prediction(
                    symbol, now_us // 1000, prices[symbol], forecast_bps, prices[symbol] * math.exp(forecast_bps / 1e4),
                    1, "READY" if n >= 20 else "WARMING_UP", "linear", "1", n, "ticks", partition, n,
                    now_us // 1000 - 3, now_us, f"w-{partition % 2 + 1}", abs(rng.gauss(6.0, 1.0)) if n else None,
                )  # fmt: skip
                offset = feed.ring(partition).head + 1
                feed.ingest([Published.of(partition, offset, prediction, time.monotonic())])
                self.published += 1
            await asyncio.sleep(1.0 / self.rate)  # the feed's pace, not a wait for another process
        self._stopped.set()


class ServerThread:
    """A uvicorn server for ``app`` on a free loopback port, in a thread of this process (HTTPS with ``tls``)."""

    def __init__(self, app: FastAPI, tls: ssl.SSLContext | None = None) -> None:
        self.port = free_port()
        secure: dict[str, Any] = {} if tls is None else {"ssl_context_factory": lambda config, default: tls}
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=2, **secure
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="gateway-test-server", daemon=True)
        self.scheme = "http" if tls is None else "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_for(lambda: self.server.started, 10, f"the gateway test server on port {self.port}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def fake_worker_stats(workers: dict[str, dict[str, object]]) -> FastAPI:
    """An app serving ``/{name}/stats`` with the given body for each worker name, as workers' ``/stats`` would."""
    app = FastAPI()

    @app.get("/{name}/stats")
    async def stats(name: str) -> dict[str, object]:
        return workers[name]

    return app
