"""The workers' own view of the pipeline, from their ``/stats``: lag per partition, dead letters, partitions held.

What the gateway reads off the predictions topic says what came out, not what is still waiting to go in.
The lag is known only to each worker (its consumer's high watermark minus its position), so when
``TICKCAST_GATEWAY_WORKER_STATS_URLS`` names the workers' ``/stats`` pages, the gateway polls them every
``gateway_worker_stats_interval_s`` and the dashboard shows their sum. Workers that scale are found by DNS
instead (``TICKCAST_GATEWAY_WORKER_STATS_DNS``): a Kubernetes headless Service, or a compose service name,
has one address record per running worker, so the name is resolved again before every poll.
Polled, not pushed: a worker knows nothing of gateways, and a dead worker shows up as unreachable instead of
silently stale numbers.
Why not the committed offsets through an admin client: the workers commit in batches, so that lag jumps by
a batch, and an admin client per gateway replica would be one more broker connection per replica.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import structlog

log = structlog.get_logger("tickcast.gateway")

Fetch = Callable[[str], Awaitable[dict[str, Any]]]
Discover = Callable[[], Awaitable[list[str]]]
STATS_PATH = "/stats"


def stats_url(family: int, address: str, port: int) -> str:
    """The ``/stats`` URL of a worker at one resolved address.

    >>> stats_url(socket.AF_INET, "10.0.0.7", 6066)
    'http://10.0.0.7:6066/stats'
    >>> stats_url(socket.AF_INET6, "fd00::7", 6066)
    'http://[fd00::7]:6066/stats'
    """
    host = f"[{address}]" if family == socket.AF_INET6 else address
    return f"http://{host}:{port}{STATS_PATH}"


def dns_discovery(host_port: str) -> Discover:
    """Resolves ``host:port`` to one ``/stats`` URL per address record, sorted, when awaited.

    >>> import asyncio
    >>> asyncio.run(dns_discovery("127.0.0.1:6066")())
    ['http://127.0.0.1:6066/stats']
    """
    host, _, port_text = host_port.rpartition(":")
    port = int(port_text)

    async def discover() -> list[str]:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return sorted({stats_url(family, str(sockaddr[0]), port) for family, _, _, _, sockaddr in found})

    return discover


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
        discover: Discover | None = None,
    ) -> None:
        self.static_urls = list(urls)
        self.urls = list(urls)
        self.interval_s = interval_s
        self._fetch = fetch
        self._clock = clock
        self._discover = discover
        self._discovery_error: str | None = None
        self._last: dict[str, tuple[float, dict[str, Any]]] = {}
        self._errors: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        """Whether there is anything to poll (static URLs, or a name to resolve)."""
        return bool(self.static_urls) or self._discover is not None

    async def rediscover(self) -> None:
        """Replaces the discovered URLs; on a failed lookup keeps the last ones and reports the failure."""
        if self._discover is None:
            return
        try:
            found = await self._discover()
        except OSError as exc:  # socket.gaierror: the name does not resolve (yet), or DNS is down
            self._discovery_error = f"worker discovery failed: {type(exc).__name__}: {exc}"[:200]
            log.warning("gateway_worker_discovery_failed", error=self._discovery_error)
            return
        self._discovery_error = None
        self.urls = list(dict.fromkeys([*self.static_urls, *found]))
        # A worker that left (scaled in, or rescheduled at a new address) is no longer shown as unreachable.
        for gone in set(self._last) - set(self.urls):
            del self._last[gone]
        for gone in set(self._errors) - set(self.urls):
            del self._errors[gone]

    async def poll_once(self, fetch: Fetch) -> None:
        await self.rediscover()
        answers = await asyncio.gather(*(fetch(url) for url in self.urls), return_exceptions=True)
        now = self._clock()
        for url, answer in zip(self.urls, answers, strict=True):
            if isinstance(answer, BaseException):
                self._errors[url] = f"{type(answer).__name__}: {answer}"[:200]
                continue
            try:
                # Checked here, once: summary() reads every answer again for each /v1/pipeline request, and a
                # URL that reaches another service's JSON (a wrong port or name) made every one of them fail.
                parse_stats(url, answer, 0.0)
            except (AttributeError, TypeError, ValueError, OverflowError) as exc:
                self._errors[url] = f"not a worker's /stats: {type(exc).__name__}: {exc}"[:200]
                continue
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
        if self._discovery_error is not None:
            result.append(WorkerStats("dns", None, (), None, 0, self._discovery_error, None))
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
