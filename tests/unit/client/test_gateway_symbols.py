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


def test_a_stream_of_a_symbol_with_a_slash_brings_its_predictions_and_only_its() -> None:
    feed = make_feed()
    with serving(create_app(feed), hot_get_protocol(feed)) as server:
        client = TickcastClient.gateway(f"http://127.0.0.1:{port_of(server)}")

        async def first() -> str:
            async with asyncio.timeout(10):
                async for record in client.subscribe(["BRK/B"]):
                    return record.symbol
            return "nothing"

        async def scenario() -> str:
            reading = asyncio.create_task(first())
            async with asyncio.timeout(10):
                while not len(feed.hub):  # the stream is open: what is published from now on reaches it
                    await asyncio.sleep(0.02)  # polling the hub's count, not a synchronising wait
            await asyncio.to_thread(publish_on_loop, feed, server, "BRK/A", "BRK/B")
            return await reading

        assert asyncio.run(scenario()) == "BRK/B"
