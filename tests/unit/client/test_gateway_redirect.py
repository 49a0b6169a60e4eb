"""The client against a URL that redirects (an ingress sending http:// to https://): said at once, not retried."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tickcast.client import TickcastClient
from tickcast.testing.http_thread import port_of, serving


async def redirect_to_https(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """What ingress-nginx answers on plain HTTP for a host with TLS (its default ssl-redirect)."""
    if scope["type"] != "http":
        return
    location = f"https://gateway.example{scope['path']}".encode()
    await send({"type": "http.response.start", "status": 308, "headers": [(b"location", location)]})
    await send({"type": "http.response.body", "body": b""})


async def first(client: TickcastClient) -> object:
    async for record in client.subscribe(["SPY"]):
        return record
    return None


def test_a_redirected_stream_fails_with_where_it_was_sent_instead_of_reconnecting_for_ever() -> None:
    with serving(redirect_to_https) as server:
        client = TickcastClient.gateway(f"http://127.0.0.1:{port_of(server)}")

        async def bounded() -> object:
            async with asyncio.timeout(5):
                return await first(client)

        try:
            with pytest.raises(ValueError, match="308") as refused:
                asyncio.run(bounded())
        except TimeoutError:
            raise AssertionError(
                f"the redirect was retried in silence ({client.source.reconnects} reconnects in 5 s)"  # type: ignore[attr-defined]
            ) from None
        assert "https://gateway.example/v1/stream" in str(refused.value)
        with pytest.raises(ValueError, match="308") as redirected:
            asyncio.run(client.latest("SPY"))
        assert "redirected to https://gateway.example/v1/predictions/SPY" in str(redirected.value)
