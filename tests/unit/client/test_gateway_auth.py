"""The client against a gateway with a clients file: without a token, or with a wrong one, ``subscribe()`` and
``latest()`` fail with the gateway's reason and the setting that carries a token, not a bare HTTP error."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.gateway.fakes import make_feed, publish_on_loop
from tests.unit.gateway.test_auth import TOKEN, write_clients
from tickcast.client import TickcastClient
from tickcast.gateway.app import create_app
from tickcast.gateway.auth import client_line
from tickcast.gateway.hotget import hot_get_protocol
from tickcast.testing.http_thread import port_of, serving


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    feed = make_feed(gateway_clients_file=write_clients(tmp_path / "clients", [client_line("desk-1", TOKEN)]))
    with serving(create_app(feed), hot_get_protocol(feed)) as server:
        publish_on_loop(feed, server, "SPY")
        yield f"http://127.0.0.1:{port_of(server)}"


async def first(client: TickcastClient) -> object:
    async for record in client.subscribe(["SPY"], idle_timeout_s=5):
        return record
    return None


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_a_refused_token_names_the_setting_that_carries_one(url: str, token: str | None) -> None:
    client = TickcastClient.gateway(url, token=token)
    for call in (first(client), client.latest("SPY")):
        with pytest.raises(ValueError, match="401") as refused:
            asyncio.run(call)  # type: ignore[arg-type]
        assert "TICKCAST_CLIENT_GATEWAY_TOKEN" in str(refused.value) and "unauthorized" in str(refused.value)
    assert asyncio.run(TickcastClient.gateway(url, token=TOKEN).latest("SPY")) is not None
