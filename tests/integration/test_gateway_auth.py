"""A gateway with a clients file on the real broker: GET and SSE only with a known token, the Python client with
its token, a revoked client's stream closed without a restart, and no token in the gateway's log."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tickcast.client import TickcastClient
from tickcast.gateway.auth import client_line
from tickcast.producer.synthetic import SyntheticFeed, symbol_names
from tickcast.testing.gateway import GatewayProcess, read_events
from tickcast.testing.pipeline import Pipeline, wait_for_assignment
from tickcast.testing.reading import collect
from tickcast.testing.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SYMBOLS = symbol_names(4)


def write_clients(path: Path, lines: list[str]) -> None:
    fresh = path.with_name(path.name + ".new")
    fresh.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    os.replace(fresh, path)  # a new inode, as the kubelet swaps a Secret volume's files


def send(pipeline: Pipeline, feed: SyntheticFeed, count: int) -> None:
    publisher = pipeline.publisher()
    for tick in feed.take(count):
        publisher.publish(tick)
    assert publisher.close() == 0


def stream_until_closed(url: str, token: str, timeout_s: float) -> list[tuple[str, str]]:
    """(event, data) of a whole stream, read until the gateway ends it."""
    events: list[tuple[str, str]] = []
    fields: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout_s)) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line == "" and "event" in fields:
                events.append((fields["event"], fields.get("data", "")))
                fields = {}
            elif not line.startswith(":") and ": " in line:
                name, value = line.split(": ", 1)
                fields[name] = value
    return events


def test_a_gateway_with_a_clients_file_serves_only_known_tokens_and_closes_a_revoked_stream(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    desk1, desk2 = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    clients = tmp_path / "secret" / "clients"
    clients.parent.mkdir()
    write_clients(clients, [client_line("desk-1", desk1), client_line("desk-2", desk2)])
    wait_for_assignment(pipeline, pipeline.start_workers(1), timeout_s=45)
    feed = SyntheticFeed(SYMBOLS, seed=7, clock_ms=lambda: time.time_ns() // 1_000_000)
    reader = pipeline.reader()
    send(pipeline, feed, 40)
    collect(reader, 40, 30, "predictions", pipeline)
    env = {**pipeline.env(), "TICKCAST_GATEWAY_CLIENTS_FILE": str(clients)}
    gateway = GatewayProcess(env, tmp_path / "gateway.log").start(ready_timeout_s=20)  # /health is open
    try:
        url = f"{gateway.url}/v1/predictions/{SYMBOLS[0]}"
        refused = httpx.get(url, timeout=5)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == 'Bearer realm="tickcast"'
        assert refused.json()["error"] == "unauthorized"
        assert httpx.get(url, headers={"Authorization": f"Bearer {desk1}x"}, timeout=5).status_code == 401
        served = httpx.get(url, headers={"Authorization": f"Bearer {desk1}"}, timeout=5)
        assert served.status_code == 200 and served.json()["symbol"] == SYMBOLS[0]
        assert gateway.clients() == 0, "/metrics must stay open for Prometheus"

        # The Python client with its token; without one the gateway refuses it.
        with_token = TickcastClient.gateway(gateway.url, token=desk2)
        latest = asyncio.run(with_token.latest(SYMBOLS[0]))
        assert latest is not None and latest.symbol == SYMBOLS[0]
        # The client refuses with the gateway's reason and where a token goes, as subscribe() does.
        with pytest.raises(ValueError, match=r"refused the latest of .*: 401 .*TICKCAST_CLIENT_GATEWAY_TOKEN"):
            asyncio.run(TickcastClient.gateway(gateway.url).latest(SYMBOLS[0]))

        # SSE with a token: live events arrive; without one it is refused.
        with pytest.raises(httpx.HTTPStatusError, match="401"):
            read_events(f"{gateway.url}/v1/stream", 1, 5.0)
        with ThreadPoolExecutor(2) as pool:
            reading = pool.submit(read_events, f"{gateway.url}/v1/stream", 20, 20.0, None, desk2)
            revoked = pool.submit(stream_until_closed, f"{gateway.url}/v1/stream", desk1, 30.0)
            wait_for(lambda: gateway.clients() == 2, 10, "both streams to connect", diagnostics=gateway.log_tail)
            send(pipeline, feed, 40)
            assert len(reading.result()) == 20
            # desk-1 revoked: its open stream is told and closed within a check (a second), no restart.
            write_clients(clients, [client_line("desk-2", desk2)])
            events = revoked.result(timeout=15)
        assert events[-1][0] == "dropped" and json.loads(events[-1][1])["reason"] == "revoked"
        assert [e for e, _ in events].count("prediction") >= 20
        assert httpx.get(url, headers={"Authorization": f"Bearer {desk1}"}, timeout=5).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {desk2}"}, timeout=5).status_code == 200

        metrics = httpx.get(f"{gateway.url}/metrics", timeout=5).text
        assert 'tickcast_gateway_client_requests_total{client="desk-2"}' in metrics
        assert 'client="desk-1"' not in metrics, "a revoked client's series stay behind"
        log = gateway.log_path.read_text()
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        closed = [line["reason"] for line in lines if line.get("event") == "gateway_stream_closed"]
        mine = [
            line["reason"]
            for line in lines
            if line.get("event") == "gateway_stream_closed" and line["client"] == "desk-1"
        ]
        assert mine == ["revoked"], closed
        assert any(line.get("event") == "gateway_clients_reloaded" for line in lines)
        assert desk1 not in log and desk2 not in log, "a token in the gateway's log"
    finally:
        gateway.stop()
        reader.close()
