"""The client against a scripted gateway whose stream resets: the missed newest predictions are refetched from
the latest endpoint, the loss is reported once, and nothing is yielded twice."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.unit.client.test_client import record
from tickcast.client import PredictionRecord, TickcastClient
from tickcast.client.sources import _missed
from tickcast.testing.http_thread import port_of, serving

#: One predictions partition, offsets = source offsets. The first connection gets 0..2; offsets 3..5 fall out
#: of the ring before the client is back, and its second connection gets a reset, then 6 and 7.
FIRST = [record("BAC", 0), record("KO", 1), record("SPY", 2)]
MISSED = [record("BAC", 3), record("SPY", 4), record("BAC", 5)]
AFTER = [record("SPY", 6), record("SPY", 7)]
#: What the gateway's cache holds once the client is back: BAC's newest was missed, SPY's comes on the stream,
#: KO's the client had before the reset.
LATEST = {"BAC": MISSED[-1], "SPY": AFTER[-1], "KO": FIRST[1]}


def as_json(r: PredictionRecord) -> bytes:
    return json.dumps({**r.to_avro(), "partition": r.partition, "offset": r.offset, "age_ms": 1}).encode()


def event(r: PredictionRecord) -> bytes:
    return f"id: 0:{r.offset}\nevent: prediction\ndata: ".encode() + as_json(r) + b"\n\n"


class ResettingGateway:
    """An ASGI app with the gateway's stream and latest endpoints, scripted as above."""

    def __init__(self, failing: int = 0) -> None:
        self.resumed_from: list[str | None] = []
        self.failing = failing  # answers other than the stream's that fail first (503)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/v1/stream":
            headers = dict(scope["headers"])
            resumed = headers.get(b"last-event-id")
            self.resumed_from.append(None if resumed is None else resumed.decode())
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
            )
            if resumed is None:
                body = b"retry: 1000\nid: 0:-1\n\n" + b"".join(event(r) for r in FIRST)
                await send({"type": "http.response.body", "body": body})
                return  # the connection drops: the client resumes with the id of SPY@2
            reset = json.dumps({"partitions": [0], "reason": "resume position older than the gateway keeps"})
            body = f"retry: 1000\n\nid: 0:5\nevent: reset\ndata: {reset}\n\n".encode()
            await send(
                {"type": "http.response.body", "body": body + b"".join(event(r) for r in AFTER), "more_body": True}
            )
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        if self.failing:
            self.failing -= 1
            await answer(send, 503, b'{"error": "starting"}')
        elif path == "/v1/symbols":
            listed = [
                {"symbol": s, "age_ms": 1, "partition": r.partition, "offset": r.offset} for s, r in LATEST.items()
            ]
            await answer(send, 200, json.dumps({"symbols": listed}).encode())
        elif path.startswith("/v1/predictions/") and (held := LATEST.get(path.rsplit("/", 1)[1])) is not None:
            await answer(send, 200, as_json(held))
        else:
            await answer(send, 404, b'{"error": "unknown_symbol"}')


async def answer(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("failing", [0, 1], ids=["refetch-ok", "refetch-fails-once"])
@pytest.mark.parametrize("symbols", [None, ["BAC", "KO", "SPY"]], ids=["all", "chosen"])
def test_after_a_reset_the_newest_missed_prediction_is_refetched_and_the_loss_reported_once(
    symbols: list[str] | None, failing: int
) -> None:
    # A refetch that fails resumes the stream from before the reset: the gateway resets again, and it is retried.
    gaps: list[tuple[str, int, int, int]] = []
    gateway = ResettingGateway(failing)
    with serving(gateway) as server:
        client = TickcastClient.gateway(f"http://127.0.0.1:{port_of(server)}", on_gap=lambda *gap: gaps.append(gap))

        got: list[PredictionRecord] = []

        async def read() -> None:
            # Until nothing came for 2 s: a duplicate or a late refetch would have come by then.
            async with asyncio.timeout(20):
                got.extend([r async for r in client.subscribe(symbols, idle_timeout_s=2.0)])

        try:
            asyncio.run(read())
        except TimeoutError:
            raise AssertionError(f"the stream never went quiet in 20 s; connections: {gateway.resumed_from}") from None
    resumed = [None] + ["0:2"] * (1 + failing)
    assert gateway.resumed_from == resumed, f"the client did not resume as scripted: {gateway.resumed_from}"
    offsets = [(r.symbol, r.source_offset) for r in got]
    stats = client.stats
    # BAC@5 refetched (its newest, missed), SPY@7 once (from the stream), KO@1 not again; one gap for one loss.
    assert (offsets, gaps, (stats.resets, stats.gaps, stats.duplicates)) == (
        [("BAC", 0), ("KO", 1), ("SPY", 2), ("BAC", 5), ("SPY", 6), ("SPY", 7)],
        [("predictions", 0, 3, 6)],
        (1, 1, 0),
    )
    assert client.seen("BAC") == MISSED[-1]


def test_a_reset_back_below_the_streams_last_id_counts_everything_before_it_as_missed() -> None:
    # A gateway resets a stream whose id is beyond the predictions topic's end (the topic was recreated, or the
    # id is another cluster's) back to before the oldest prediction it keeps. The client took the loss to be
    # "from 1001 up to 3": a backwards gap reported to on_gap, and no newest prediction refetched for it.
    reset = {"id": "0:2,1:40", "event": "reset", "data": '{"partitions": [0]}'}
    assert _missed("0:1000,1:40", reset) == {0: (0, 3)}
