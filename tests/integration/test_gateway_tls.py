"""A gateway serving HTTPS itself on the real broker, with a clients file too: a hot GET and an SSE stream over
https with the test CA trusted and a token, nothing in plain HTTP on that port, the Python client with and
without the CA, and no token in the gateway's log."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

import httpx
import pytest

from tickcast.client import GatewayTlsError, TickcastClient
from tickcast.gateway.auth import client_line
from tickcast.producer.synthetic import SyntheticFeed, symbol_names
from tickcast.testing.gateway import GatewayProcess, read_events
from tickcast.testing.pipeline import Pipeline, wait_for_assignment
from tickcast.testing.reading import collect
from tickcast.testing.tls import make_ca
from tickcast.testing.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SYMBOLS = symbol_names(4)


def send(pipeline: Pipeline, feed: SyntheticFeed, count: int) -> None:
    publisher = pipeline.publisher()
    for tick in feed.take(count):
        publisher.publish(tick)
    assert publisher.close() == 0


def test_a_gateway_serves_https_with_tokens_and_the_client_needs_its_ca(pipeline: Pipeline, tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "tls")
    token = secrets.token_urlsafe(32)
    clients = tmp_path / "clients"
    clients.write_text(client_line("desk-1", token) + "\n", encoding="utf-8")
    wait_for_assignment(pipeline, pipeline.start_workers(1), timeout_s=45)
    feed = SyntheticFeed(SYMBOLS, seed=11, clock_ms=lambda: time.time_ns() // 1_000_000)
    reader = pipeline.reader()
    send(pipeline, feed, 40)
    collect(reader, 40, 30, "predictions", pipeline)
    env = {
        **pipeline.env(),
        "TICKCAST_GATEWAY_CLIENTS_FILE": str(clients),
        "TICKCAST_GATEWAY_TLS_CERT_FILE": str(ca.server_cert),
        "TICKCAST_GATEWAY_TLS_KEY_FILE": str(ca.server_key),
    }
    gateway = GatewayProcess(env, tmp_path / "gateway.log", ca_file=ca.ca_file).start(ready_timeout_s=20)
    try:
        assert gateway.url.startswith("https://")
        auth = {"Authorization": f"Bearer {token}"}
        url = f"{gateway.url}/v1/predictions/{SYMBOLS[0]}"
        with httpx.Client(verify=gateway.verify, timeout=5) as https:
            served = https.get(url, headers=auth)
            assert served.status_code == 200 and served.json()["symbol"] == SYMBOLS[0]
            assert https.get(url).status_code == 401, "TLS must not replace the token"
            assert https.get(f"{gateway.url}/health").json()["ready"] is True
        # Only HTTPS on that port: a plain request gets no answer, and no prediction.
        with pytest.raises(httpx.TransportError):
            httpx.get(url.replace("https://", "http://"), headers=auth, timeout=5)

        # The SSE stream over TLS, live events included.
        stream = f"{gateway.url}/v1/stream"
        with_ca = TickcastClient.gateway(gateway.url, token=token, ca_file=ca.ca_file)
        latest = asyncio.run(with_ca.latest(SYMBOLS[1]))
        assert latest is not None and latest.symbol == SYMBOLS[1]

        async def live() -> list[str]:
            seen: list[str] = []
            reading = asyncio.create_task(_first(with_ca, 20, seen))
            await asyncio.to_thread(wait_for, lambda: gateway.clients() == 1, 10, "the client's stream to connect")
            await asyncio.to_thread(send, pipeline, feed, 40)
            await asyncio.wait_for(reading, 30)
            return seen

        assert len(asyncio.run(live())) == 20
        # A resumed stream (what a browser's reconnect does), over TLS from the ring.
        events = read_events(stream, 6, 20.0, last_event_id="0:0", token=token, verify=gateway.verify)
        assert [event.event for event in events].count("prediction") >= 5

        # Without the CA: one error naming the URL, at once, not an endless reconnect.
        without_ca = TickcastClient.gateway(gateway.url, token=token)
        with pytest.raises(GatewayTlsError, match=f"TLS to {gateway.url} failed: certificate verify failed"):
            asyncio.run(without_ca.latest(SYMBOLS[0]))

        async def subscribe_without_ca() -> None:
            async for _ in without_ca.subscribe():
                pass

        with pytest.raises(GatewayTlsError, match="unable to get local issuer certificate"):
            asyncio.run(asyncio.wait_for(subscribe_without_ca(), 15))

        log = gateway.log_path.read_text()
        assert token not in log, "a token in the gateway's log"
        opened = [json.loads(line) for line in log.splitlines() if '"gateway_stream_opened"' in line]
        assert opened and {line["client"] for line in opened} == {"desk-1"}
    finally:
        gateway.stop()
        reader.close()


async def _first(client: TickcastClient, count: int, seen: list[str]) -> None:
    async for record in client.subscribe():
        seen.append(record.symbol)
        if len(seen) >= count:
            return
