"""The gateway's HTTP API, in process over a fake source: schema-driven (schemathesis) and by example."""

from __future__ import annotations

import re
import time

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from tests.unit.gateway.fakes import make_feed, publish
from tickcast.gateway.app import create_app

FEED = make_feed(partitions=4, gateway_max_query_symbols=20)
publish(FEED, "SPY", "BAC", "KO", "IBM", "SPY")
PUBLISHED_AT = time.time()
APP = create_app(FEED, clock=lambda: PUBLISHED_AT + 1.0)  # a second after the predictions were made
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


# The stream never ends by itself; its behaviour is tested in test_fanout.py and the integration test.
@schema.exclude(path="/v1/stream").parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_openapi_document(case: schemathesis.Case) -> None:
    case.call_and_validate()


def client() -> TestClient:
    return TestClient(APP)


def test_latest_has_lineage_model_version_age_and_caching_headers() -> None:
    answer = client().get("/v1/predictions/SPY")
    assert answer.status_code == 200
    body = answer.json()
    assert body["symbol"] == "SPY" and body["model_version"] == "3" and body["source_offset"] >= 0
    assert 1_000 <= body["age_ms"] < 1_100
    assert answer.headers["etag"] == f'"{body["partition"]}:{body["offset"]}"'
    assert answer.headers["cache-control"] == "no-cache"
    again = client().get("/v1/predictions/SPY", headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_an_unknown_symbol_is_a_404_that_says_so() -> None:
    answer = client().get("/v1/predictions/NOPE")
    assert answer.status_code == 404
    assert answer.json() == {"error": "unknown_symbol", "detail": "the gateway holds no prediction for 'NOPE'"}


def test_inputs_are_bounded_and_validated() -> None:
    too_many = ",".join(f"S{n}" for n in range(21))
    assert client().get(f"/v1/predictions?symbols={too_many}").status_code == 422
    assert client().get("/v1/predictions?symbols=spy").status_code == 422
    assert client().get("/v1/predictions/" + "A" * 33).status_code == 422
    assert client().get("/v1/predictions?symbols=" + "A" * 5_000).status_code == 422
    assert client().get("/v1/predictions?symbols=A&pad=" + "A" * 9_000).status_code == 414
    assert client().get("/v1/stream", headers={"Last-Event-ID": "zero:1"}).json()["error"] == "invalid_stream_request"


def test_a_list_answers_known_symbols_and_names_the_unknown() -> None:
    body = client().get("/v1/predictions?symbols=SPY,KO,NOPE").json()
    assert [p["symbol"] for p in body["predictions"]] == ["KO", "SPY"]
    assert body["unknown"] == ["NOPE"]


def test_symbols_health_and_metrics() -> None:
    symbols = client().get("/v1/symbols").json()["symbols"]
    assert [s["symbol"] for s in symbols] == ["BAC", "IBM", "KO", "SPY"]
    assert client().get("/health").json()["status"] == "ok"
    metrics = client().get("/metrics").text
    for name in ("clients", "events_fanned_out_total", "fanout_delay_seconds_bucket", "clients_dropped_total"):
        assert f"tickcast_gateway_{name}" in metrics


def test_the_dashboard_and_every_asset_it_loads_are_served_by_the_gateway() -> None:
    page = client().get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert len(assets) == 4, assets  # uPlot's script and stylesheet, the dashboard's own
    for asset in [*assets, "/static/vendor/uplot/LICENSE"]:
        assert client().get(asset).status_code == 200, asset
    assert "http://" not in page.text and "https://" not in page.text, "the page must load nothing remote"


def test_a_symbol_with_a_slash_is_served_and_an_unknown_one_is_named_plainly_or_encoded() -> None:
    # The symbol contract allows '/', as in BRK/B; the route's path parameter stopped at the first '/'.
    feed = make_feed(partitions=4)
    publish(feed, "BRK/B")
    with TestClient(create_app(feed)) as http:
        for path in ("/v1/predictions/BRK/B", "/v1/predictions/BRK%2FB"):
            answer = http.get(path)
            assert answer.status_code == 200 and answer.json()["symbol"] == "BRK/B", (path, answer.text)
            # FastAPI answers what the fast path passes on, such as an If-None-Match too long for it to read.
            assert http.get(path, headers={"If-None-Match": '"1:1"' * 300}).status_code == 422, path
        for path in ("/v1/predictions/BRK/A", "/v1/predictions/BRK%2FA"):
            unknown = http.get(path)
            assert unknown.json() == {
                "error": "unknown_symbol",
                "detail": "the gateway holds no prediction for 'BRK/A'",
            }, f"{path}: {unknown.status_code} {unknown.text}"
        listed = http.get("/v1/predictions?symbols=BRK/B,BRK/A").json()
        assert ([p["symbol"] for p in listed["predictions"]], listed["unknown"]) == (["BRK/B"], ["BRK/A"])
        assert http.get("/v1/predictions/BRK/" + "B" * 29).status_code == 422  # still at most 32 characters
