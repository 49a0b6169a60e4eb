"""Workers found by DNS: scaled workers appear and leave on their own; a failed lookup is shown, not hidden."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from tests.unit.gateway.fakes import make_feed
from tickcast.gateway.app import create_app
from tickcast.gateway.settings import GatewaySettings
from tickcast.gateway.workers import WorkerStatsPoller, dns_discovery
from tickcast.testing.gateway_fake import ServerThread
from tickcast.testing.waiting import wait_for


def stats_body(worker: str, lag: int) -> dict[str, Any]:
    return {"worker": worker, "assigned_partitions": [0], "lag": {"0": lag}, "dead_letters": {}}


class Records:
    """A DNS name whose address records the test changes, as a headless Service's change with the pods."""

    def __init__(self, *urls: str) -> None:
        self.urls = list(urls)
        self.failure: OSError | None = None

    async def __call__(self) -> list[str]:
        if self.failure is not None:
            raise self.failure
        return list(self.urls)


async def fetch(url: str) -> dict[str, Any]:
    return stats_body(url.split("/")[2], lag=len(url))


def polled(poller: WorkerStatsPoller) -> dict[str, Any]:
    asyncio.run(poller.poll_once(fetch))
    return poller.summary()


def test_a_scaled_out_worker_is_polled_and_a_scaled_in_one_leaves_without_an_error() -> None:
    records = Records("http://10.0.0.1:6066/stats")
    poller = WorkerStatsPoller([], 1.0, discover=records)
    assert poller.enabled and polled(poller)["workers_reporting"] == 1

    records.urls = ["http://10.0.0.1:6066/stats", "http://10.0.0.2:6066/stats"]
    assert [w["worker"] for w in polled(poller)["worker_stats"]] == ["10.0.0.1:6066", "10.0.0.2:6066"]

    records.urls = ["http://10.0.0.2:6066/stats"]
    summary = polled(poller)
    assert [w["worker"] for w in summary["worker_stats"]] == ["10.0.0.2:6066"]
    assert all(w["error"] is None for w in summary["worker_stats"])


def test_a_failed_lookup_keeps_the_last_workers_and_says_why() -> None:
    records = Records("http://10.0.0.1:6066/stats")
    poller = WorkerStatsPoller([], 1.0, discover=records)
    polled(poller)
    records.failure = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    summary = polled(poller)
    assert summary["workers_reporting"] == 1, "the last known worker is still polled"
    [discovery] = [w for w in summary["worker_stats"] if w["url"] == "dns"]
    assert discovery["error"].startswith("worker discovery failed: gaierror")

    records.failure = None
    assert all(w["url"] != "dns" for w in polled(poller)["worker_stats"]), "the error clears once DNS answers"


def test_static_urls_stay_beside_discovered_ones_without_duplicates() -> None:
    records = Records("http://10.0.0.1:6066/stats", "http://10.0.0.2:6066/stats")
    poller = WorkerStatsPoller(["http://10.0.0.2:6066/stats"], 1.0, discover=records)
    polled(poller)
    assert poller.urls == ["http://10.0.0.2:6066/stats", "http://10.0.0.1:6066/stats"]


def test_nothing_to_poll_without_urls_or_a_name() -> None:
    assert not WorkerStatsPoller([], 1.0).enabled


def test_a_name_resolves_to_every_address_record() -> None:
    urls = asyncio.run(dns_discovery("localhost:6066")())
    assert "http://127.0.0.1:6066/stats" in urls
    assert urls == sorted(set(urls))


@pytest.mark.parametrize("value", ["predictor", "http://predictor:6066", "predictor:port", "a b:1"])
def test_the_setting_is_a_host_and_a_port(value: str) -> None:
    with pytest.raises(ValidationError, match="gateway_worker_stats_dns"):
        GatewaySettings(gateway_worker_stats_dns=value)


def test_the_gateway_polls_the_workers_its_setting_names() -> None:
    worker = FastAPI()

    @worker.get("/stats")
    async def stats() -> dict[str, Any]:
        return stats_body("w1", lag=9)

    with ServerThread(worker) as running:
        port = httpx.URL(running.url).port
        feed = make_feed(gateway_worker_stats_dns=f"127.0.0.1:{port}", gateway_worker_stats_interval_s=0.1)
        with TestClient(create_app(feed)) as client:

            def reported() -> bool:
                return bool(client.get("/v1/pipeline").json().get("lag") == 9)

            wait_for(reported, 10, "the gateway to report the lag of the worker its DNS setting names",
                     diagnostics=lambda: str(client.get("/v1/pipeline").json()))  # fmt: skip


def test_an_answer_that_is_not_a_workers_stats_is_that_urls_error_not_a_failed_pipeline_page() -> None:
    # A URL that reaches some other service (a wrong port, a name another service answers to) answers JSON too.
    answers: dict[str, Any] = {
        "http://10.0.0.1:6066/stats": stats_body("w1", lag=4),
        "http://10.0.0.2:6066/stats": [{"status": "ok"}],
        "http://10.0.0.3:6066/stats": {"worker": "w3", "lag": {"0": "n/a"}},
    }

    async def fetch_answer(url: str) -> Any:
        return answers[url]

    poller = WorkerStatsPoller(list(answers), 1.0)
    asyncio.run(poller.poll_once(fetch_answer))
    try:
        summary = poller.summary()
    except Exception as exc:
        raise AssertionError(f"/v1/pipeline would fail on every request: {type(exc).__name__}: {exc}") from exc
    assert summary["lag"] == 4 and summary["workers_reporting"] == 1
    errors = {w["url"]: w["error"] for w in summary["worker_stats"]}
    assert errors["http://10.0.0.1:6066/stats"] is None
    assert errors["http://10.0.0.2:6066/stats"].startswith("not a worker's /stats"), errors
    assert errors["http://10.0.0.3:6066/stats"].startswith("not a worker's /stats"), errors
