"""The worker's HTTP server, built by create_app and served in-process: closed views, read-only, bounded, token."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from tickcast.common.records import Lineage, Tick
from tickcast.predictor.settings import PredictorSettings
from tickcast.testing.worker_app import built_worker_app

TOKEN = "a-bearer-token-of-decent-length"
FAUST_VIEWS = ["/router/", "/table/", "/graph/", "/assignment/", "/performance/"]
OURS = ["/health", "/stats", "/metrics", "/predictions/SPY"]


def settings(tmp_path: Path, **overrides: Any) -> PredictorSettings:
    return PredictorSettings(bootstrap_servers="127.0.0.1:1", data_dir=tmp_path, **overrides)


def answers(config: PredictorSettings, requests: list[tuple[str, str, dict[str, str]]]) -> list[tuple[int, str]]:
    """(status, body) of each (method, path, headers) sent to the worker's web app, served on a test port."""
    with built_worker_app(config) as (app, _):

        async def send() -> list[tuple[int, str]]:
            app.web.init_server()  # mounts the blueprints Faust would mount when the worker starts
            async with TestClient(TestServer(app.web.web_app)) as client:  # type: ignore[attr-defined]
                seen = []
                for method, path, headers in requests:
                    response = await client.request(method, path, headers=headers)
                    seen.append((response.status, await response.text()))
                return seen

        return asyncio.run(send())


def test_faust_default_views_are_not_mounted(tmp_path: Path) -> None:
    statuses = answers(settings(tmp_path), [("GET", path, {}) for path in FAUST_VIEWS])
    assert [status for status, _ in statuses] == [404] * len(FAUST_VIEWS)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_every_endpoint_is_read_only(tmp_path: Path, method: str) -> None:
    paths = [*OURS, "/", *FAUST_VIEWS]
    seen = answers(settings(tmp_path), [(method, path, {}) for path in paths])
    assert [status for status, _ in seen] == [405] * len(paths)
    assert all("read-only" in body for _, body in seen)


def test_our_views_answer_get(tmp_path: Path) -> None:
    seen = answers(settings(tmp_path), [("GET", path, {}) for path in OURS])
    # No prediction for SPY yet: 404 from the view itself, not from a missing route.
    assert [status for status, _ in seen] == [200, 200, 200, 404]


@pytest.mark.parametrize("symbol", ["x" * 33, "spy", "SPY%00", "A" * 4000, "%F0%9F%92%A3"])
def test_a_symbol_outside_the_tick_pattern_is_refused_without_being_echoed(tmp_path: Path, symbol: str) -> None:
    [(status, body)] = answers(settings(tmp_path), [("GET", f"/predictions/{symbol}", {})])
    assert status == 400, body
    assert symbol not in body and "A-Z" in body


def test_the_token_guards_predictions_only(tmp_path: Path) -> None:
    config = settings(tmp_path, web_token=TOKEN)
    seen = answers(
        config,
        [
            ("GET", "/predictions/SPY", {}),
            ("GET", "/predictions/SPY", {"Authorization": "Bearer wrong"}),
            ("GET", "/predictions/SPY", {"Authorization": f"Basic {TOKEN}"}),
            ("GET", "/predictions/SPY", {"Authorization": f"Bearer {TOKEN}"}),
            ("GET", "/health", {}),
            ("GET", "/metrics", {}),
        ],
    )
    assert [status for status, _ in seen] == [401, 401, 401, 404, 200, 200]
    assert "bearer token" in seen[0][1]
    assert all(TOKEN not in body for _, body in seen)


def test_the_server_binds_the_configured_interface(tmp_path: Path) -> None:
    # Faust listens on web_bind, not web_host: TICKCAST_WEB_HOST must reach the former.
    with built_worker_app(settings(tmp_path, web_host="127.0.0.1")) as (app, _):
        assert app.conf.web_bind == "127.0.0.1"


def test_the_cli_default_is_loopback() -> None:
    assert PredictorSettings.model_fields["web_host"].default == "127.0.0.1"


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 16"):
        PredictorSettings(bootstrap_servers="k:1", web_token="short")


def test_a_symbol_with_a_slash_is_served_and_an_unknown_one_is_named_plainly_or_encoded(tmp_path: Path) -> None:
    # The symbol contract allows '/', as in BRK/B; a plain route parameter stops at the first '/'.
    config = settings(tmp_path, worker_id="w1")
    with built_worker_app(config) as (app, handler):
        handler.forecaster.process(Tick("BRK/B", 500.0, 1.0, 1), Lineage("ticks", 0, 0, 0), now_us=1)

        async def send(paths: list[str]) -> list[tuple[int, str]]:
            app.web.init_server()
            async with TestClient(TestServer(app.web.web_app)) as client:  # type: ignore[attr-defined]
                return [(r.status, await r.text()) for r in [await client.get(path) for path in paths]]

        held = asyncio.run(send(["/predictions/BRK/B", "/predictions/BRK%2FB"]))
    for status, body in held:
        assert status == 200 and json.loads(body)["symbol"] == "BRK/B", f"{status} {body}"
    unknown = answers(config, [("GET", path, {}) for path in ("/predictions/BRK/A", "/predictions/BRK%2FA")])
    for status, body in unknown:
        assert status == 404 and "no prediction for 'BRK/A' on worker w1" in body, f"{status} {body}"
    [(status, _)] = answers(config, [("GET", "/predictions/BRK/" + "B" * 29, {})])
    assert status == 400, "still at most 32 characters"
