"""The dashboard in a real browser (headless Debian chromium, driven by Selenium through chromedriver).

A gateway in this process is fed synthetic predictions; the page must chart a named symbol from the SSE
stream and show the same numbers as the API. The screenshot is kept in the test's tmp dir.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tickcast.gateway.app import create_app
from tickcast.gateway.feed import PredictionFeed
from tickcast.gateway.settings import GatewaySettings
from tickcast.testing.data import DataSettings
from tickcast.testing.gateway_fake import ServerThread, SyntheticPredictions
from tickcast.testing.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SYMBOLS = ["BAC", "KO", "SPY", "XOM"]


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless chromium; skipped without it, except in CI (.ci/run installs chromium and chromium-driver)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        message = "needs Debian's chromium and chromium-driver"
        if DataSettings().ci:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,900"):
        options.add_argument(argument)
    # The system chromedriver, so Selenium never downloads a browser or a driver.
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield session
    finally:
        session.quit()


def test_the_dashboard_charts_a_symbol_live_and_shows_what_the_api_says(browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    source = SyntheticPredictions(SYMBOLS, rate=25.0, count=150)
    app = create_app(PredictionFeed(GatewaySettings(partitions=4)), source)
    with ServerThread(app) as server:
        browser.get(f"{server.url}/?symbol=SPY")
        chart = browser.find_element(By.ID, "chart")

        def charted() -> int:
            return int(chart.get_attribute("data-points") or 0) if chart.get_attribute("data-symbol") == "SPY" else 0

        wait_for(
            lambda: charted() >= 40,
            20,
            "the SPY chart to have 40 points",
            diagnostics=lambda: browser.page_source[:2000],
        )
        assert browser.find_elements(By.CSS_SELECTOR, "#chart canvas"), "uPlot drew no canvas"
        wait_for(lambda: source.done, 20, "the synthetic feed to finish")

        api = httpx.get(f"{server.url}/v1/predictions/SPY", timeout=5).json()

        def cell(name: str) -> str:
            return browser.find_element(By.CSS_SELECTOR, f'tr[data-symbol="SPY"] td.{name}').text

        wait_for(lambda: cell("price") == f"{api['last_price']:.4f}", 5, "the table to show the API's last price")
        assert cell("forecast") == f"{api['predicted_price']:.4f}"
        assert cell("error") == f"{api['abs_error_ewm_bps']:.2f}"
        assert cell("status") == api["status"]
        assert float(chart.get_attribute("data-last-price") or 0) == api["last_price"]
        rows = browser.find_elements(By.CSS_SELECTOR, "#symbols tbody tr")
        assert sorted(row.get_attribute("data-symbol") for row in rows) == SYMBOLS
        wait_for(lambda: browser.find_element(By.ID, "h-symbols").text == "4", 5, "the health panel to count 4 symbols")
        browser.save_screenshot(str(tmp_path / "dashboard.png"))
        browser.get("about:blank")  # close the page's stream before the server stops
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
