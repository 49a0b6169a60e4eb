"""The client's gateway source with symbols holding characters that mean something in a URL path ('/', '.')."""

from __future__ import annotations

import asyncio

from tests.unit.gateway.fakes import make_feed, publish_on_loop
from tickcast.client import TickcastClient
from tickcast.gateway.app import create_app
from tickcast.gateway.hotget import hot_get_protocol
from tickcast.testing.http_thread import port_of, serving


def test_latest_asks_for_the_symbol_named_even_when_it_reads_as_a_path() -> None:
    # The symbol contract allows '/' and '.': put into the URL as they are, "A/." asked for /v1/predictions/A
    # (a client normalises dot segments away) and came back with A's prediction as if it were A/.'s.
    feed = make_feed()
    with serving(create_app(feed), hot_get_protocol(feed)) as server:
        publish_on_loop(feed, server, "A", "BRK/B")
        client = TickcastClient.gateway(f"http://127.0.0.1:{port_of(server)}")
        held = asyncio.run(client.latest("BRK/B"))
        assert held is not None and held.symbol == "BRK/B", held
        wrong = asyncio.run(client.latest("A/."))
        assert wrong is None, f"latest('A/.') answered {wrong.symbol}'s prediction"
