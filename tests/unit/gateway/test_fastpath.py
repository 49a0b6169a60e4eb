"""The hot GET is answered before FastAPI, from bytes encoded once per prediction; anything else passes on."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from tests.unit.gateway.fakes import make_feed, publish
from tickcast.gateway.app import create_app
from tickcast.gateway.cache import Published
from tickcast.gateway.fastpath import MAX_IF_NONE_MATCH, MAX_QUERY_BYTES, FastPath


class Behind:
    """The app behind the fast path: records what reached it and answers 299."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_a_held_symbol_is_answered_without_reaching_the_app_behind() -> None:
    feed = make_feed()
    (item,) = publish(feed, "SPY")
    behind = Behind()
    client = TestClient(FastPath(behind, feed.cache, clock=lambda: item.predicted_at_ms / 1000.0 + 0.25))
    answer = client.get("/v1/predictions/SPY")
    assert behind.paths == [], "the hot path went through the app behind it"
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.headers["etag"] == f'"{item.partition}:{item.offset}"'
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.json() == {**json.loads(item.body), "age_ms": 250.0}
    assert client.get("/v1/predictions/SPY", headers={"If-None-Match": answer.headers["etag"]}).status_code == 304


@pytest.mark.parametrize(
    "path", ["/v1/predictions/NOPE", "/v1/predictions/spy", "/v1/predictions", "/v1/symbols", "/health"]
)
def test_anything_else_goes_on_to_the_app(path: str) -> None:
    feed = make_feed()
    publish(feed, "SPY")
    behind = Behind()
    assert TestClient(FastPath(behind, feed.cache)).get(path).status_code == 299
    assert behind.paths == [path]


def test_an_if_none_match_too_long_to_read_goes_on_and_fastapi_refuses_it() -> None:
    feed = make_feed()
    publish(feed, "SPY")
    answer = TestClient(create_app(feed)).get("/v1/predictions/SPY", headers={"If-None-Match": "x" * 2_000})
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_request"


def test_the_body_and_etag_are_encoded_once_when_the_prediction_arrives() -> None:
    item = Published(3, 41, "A", 0.0, 1_000.0, '{"symbol":"A"}')
    assert item.etag == b'"3:41"' and item.json_head == b'{"symbol":"A","age_ms":'
    assert item.sse_frame == b'id: 3:41\nevent: prediction\ndata: {"symbol":"A"}\n\n'


def test_the_gateway_app_puts_the_fast_path_in_front_of_fastapis_whole_middleware_stack() -> None:
    # Inside it (add_middleware), every hot GET went through Starlette's error and exception middlewares too.
    feed = make_feed()
    (item,) = publish(feed, "SPY")
    app = create_app(feed)
    assert isinstance(app.middleware_stack, FastPath), type(app.middleware_stack).__name__
    with TestClient(app) as client:  # the lifespan passes through it too
        answer = client.get("/v1/predictions/SPY")
        assert answer.status_code == 200 and answer.headers["etag"] == f'"{item.partition}:{item.offset}"'
        assert client.get("/v1/predictions/NOPE").json()["error"] == "unknown_symbol"


def test_a_query_of_exactly_the_limit_goes_on_and_one_byte_more_is_refused_for_head_too() -> None:
    feed = make_feed()
    behind = Behind()
    client = TestClient(FastPath(behind, feed.cache))
    at_limit = "q=" + "x" * (MAX_QUERY_BYTES - 2)
    assert client.get(f"/v1/symbols?{at_limit}").status_code == 299
    for method in ("GET", "HEAD"):
        refused = client.request(method, f"/v1/symbols?{at_limit}x")
        assert refused.status_code == 414, f"{method} with a query of {MAX_QUERY_BYTES + 1} bytes: {refused}"
    assert behind.paths == ["/v1/symbols"]


def test_a_304_names_the_etag_and_a_200_its_exact_length() -> None:
    feed = make_feed()
    (item,) = publish(feed, "SPY")
    behind = Behind()
    client = TestClient(FastPath(behind, feed.cache))
    etag = f'"{item.partition}:{item.offset}"'
    # The longest If-None-Match the fast path reads, the ETag last among others.
    longest = '"' + "x" * (MAX_IF_NONE_MATCH - len(etag) - 4) + '", ' + etag
    assert len(longest) == MAX_IF_NONE_MATCH
    revalidated = client.get("/v1/predictions/SPY", headers={"If-None-Match": longest})
    assert (revalidated.status_code, revalidated.headers.get("etag")) == (304, etag), "a 304 must carry the ETag"
    assert behind.paths == [], "an If-None-Match of exactly the limit went past the fast path"
    fresh = client.get("/v1/predictions/SPY")
    assert fresh.headers["content-length"] == str(len(fresh.content))
