"""The workers' own view of the pipeline, from their ``/stats``: lag per partition, dead letters, partitions held.

What the gateway reads off the predictions topic says what came out, not what is still waiting to go in.
The lag is known only to each worker (its consumer's high watermark minus its position), so when
``TICKCAST_GATEWAY_WORKER_STATS_URLS`` names the workers' ``/stats`` pages, the gateway polls them every
``gateway_worker_stats_interval_s`` and the dashboard shows their sum. Polled, not pushed: a worker knows
nothing of gateways, and a dead worker shows up as unreachable instead of silently stale numbers.
Why not the committed offsets through an admin client: the workers commit in batches, so that lag jumps by
a batch, and an admin client per gateway replica would be one more broker connection per replica.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import structlog

log = structlog.get_logger("tickcast.gateway")

Fetch = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """One worker's last answer (or why there is none)."""

    url: str
    worker: str | None
    partitions: tuple[int, ...]
    lag: int | None
    """Records waiting in its partitions, summed (None if the worker does not know yet)."""
    dead_letters: int
    error: str | None
    age_s: float | None
    """Seconds since the answer, by the gateway's clock."""

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "worker": self.worker,
            "partitions": list(self.partitions),
            "lag": self.lag,
            "dead_letters": self.dead_letters,
            "error": self.error,
            "age_s": None if self.age_s is None else round(self.age_s, 1),
        }


def parse_stats(url: str, body: dict[str, Any], age_s: float) -> WorkerStats:
    """A worker's ``/stats`` answer, reduced to what the dashboard shows.

    >>> s = parse_stats("u", {"worker": "w1", "assigned_partitions": [0, 2], "lag": {"0": 3, "2": 4},
    ...                       "dead_letters": {"invalid": 2, "late": 1}}, 0.5)
    >>> s.worker, s.partitions, s.lag, s.dead_letters
    ('w1', (0, 2), 7, 3)
    >>> parse_stats("u", {"worker": "w2", "assigned_partitions": [], "lag": {}, "dead_letters": {}}, 0.0).lag
    0
    >>> parse_stats("u", {"worker": "w3"}, 0.0).lag is None
    True
    """
    lag = body.get("lag")
    return WorkerStats(
        url=url,
        worker=str(body.get("worker")),
        partitions=tuple(int(p) for p in body.get("assigned_partitions", ())),
        lag=None if lag is None else sum(int(v) for v in lag.values()),
        dead_letters=sum(int(v) for v in (body.get("dead_letters") or {}).values()),
        error=None,
        age_s=age_s,
    )


class WorkerStatsPoller:
    """Polls every URL in turn, keeps each one's last answer; :meth:`summary` is what ``/v1/pipeline`` adds."""

    def __init__(
        self,
        urls: list[str],
        interval_s: float,
        fetch: Fetch | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.urls = urls
        self.interval_s = interval_s
        self._fetch = fetch
        self._clock = clock
        self._last: dict[str, tuple[float, dict[str, Any]]] = {}
        self._errors: dict[str, str] = {}

    async def poll_once(self, fetch: Fetch) -> None:
        answers = await asyncio.gather(*(fetch(url) for url in self.urls), return_exceptions=True)
        now = self._clock()
        for url, answer in zip(self.urls, answers, strict=True):
            if isinstance(answer, BaseException):
                self._errors[url] = f"{type(answer).__name__}: {answer}"[:200]
            else:
                self._last[url] = (now, answer)
                self._errors.pop(url, None)

    async def run(self) -> None:
        """Poll until cancelled (the app's lifespan cancels it)."""
        async with httpx.AsyncClient(timeout=min(2.0, self.interval_s)) as client:

            async def fetch(url: str) -> dict[str, Any]:
                answer = await client.get(url)
                answer.raise_for_status()
                body: dict[str, Any] = answer.json()
                return body

            while True:
                await self.poll_once(self._fetch or fetch)
                await asyncio.sleep(self.interval_s)  # the polling period, not a wait for an event

    def workers(self) -> list[WorkerStats]:
        now = self._clock()
        result = []
        for url in self.urls:
            seen = self._last.get(url)
            error = self._errors.get(url)
            if seen is None:
                result.append(WorkerStats(url, None, (), None, 0, error or "not polled yet", None))
                continue
            stats = parse_stats(url, seen[1], now - seen[0])
            result.append(stats if error is None else replace(stats, error=error))
        return result

    def summary(self) -> dict[str, Any]:
        """Total lag and dead letters of the workers that answered, and each worker's own numbers.

        >>> poller = WorkerStatsPoller(["a", "b"], 1.0, clock=lambda: 10.0)
        >>> async def fetch(url):
        ...     if url == "b":
        ...         raise OSError("refused")
        ...     return {"worker": "w1", "assigned_partitions": [0], "lag": {"0": 5}, "dead_letters": {"x": 2}}
        >>> asyncio.run(poller.poll_once(fetch))
        >>> s = poller.summary()
        >>> s["lag"], s["worker_dead_letters"], s["workers_reporting"], s["worker_stats"][1]["error"]
        (5, 2, 1, 'OSError: refused')
        """
        workers = self.workers()
        answered = [w for w in workers if w.error is None]
        lags = [w.lag for w in answered if w.lag is not None]
        return {
            "lag": sum(lags) if lags else None,
            "worker_dead_letters": sum(w.dead_letters for w in answered),
            "workers_reporting": len(answered),
            "worker_stats": [w.as_json() for w in workers],
        }
