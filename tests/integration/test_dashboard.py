"""The dashboard in a real browser (headless Debian chromium, driven by Selenium through chromedriver).

A gateway in this process is fed synthetic predictions; the page must chart a named symbol from the SSE
stream and show the same numbers as the API. The screenshot is kept in the test's tmp dir. With a clients file,
the page gets its token from the URL's fragment, and without one it says it needs one. Served over HTTPS (a
test CA, which chromium is told to accept), the page and its streaming fetch work the same.
"""

from __future__ import annotations

import shutil
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tickcast.common.processes import free_port
from tickcast.common.records import Prediction
from tickcast.gateway.app import create_app
from tickcast.gateway.auth import client_line
from tickcast.gateway.cache import Published
from tickcast.gateway.feed import PredictionFeed
from tickcast.gateway.settings import GatewaySettings
from tickcast.gateway.tls import ServerTls, TlsFiles
from tickcast.testing.data import DataSettings
from tickcast.testing.gateway_fake import ServerThread, SyntheticPredictions, fake_worker_stats
from tickcast.testing.tls import make_ca
from tickcast.testing.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SYMBOLS = ["BAC", "KO", "SPY", "XOM"]
WORKER_STATS: dict[str, dict[str, object]] = {
    "w1": {"worker": "w1", "assigned_partitions": [0, 1], "lag": {"0": 3, "1": 4}, "dead_letters": {"invalid": 2}},
    "w2": {"worker": "w2", "assigned_partitions": [2, 3], "lag": {"2": 5, "3": 0}, "dead_letters": {"late": 1}},
}


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
    # The https case's certificate is signed by a CA made for the test, which chromium's own store lacks.
    options.add_argument("--ignore-certificate-errors")
    # The system chromedriver, so Selenium never downloads a browser or a driver.
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield session
    finally:
        session.quit()


@pytest.mark.parametrize(
    ("token", "https"),
    [(None, False), ("dashboard-token-0123456789abcdef", False), ("dashboard-token-0123456789abcdef", True)],
    ids=["open", "with-clients-file", "https-with-clients-file"],
)
def test_the_dashboard_charts_a_symbol_live_and_shows_what_the_api_says(
    browser: object, tmp_path: Path, token: str | None, https: bool
) -> None:
    source = SyntheticPredictions(SYMBOLS, rate=25.0, count=150)
    tls, verify = None, True
    if https:
        ca = make_ca(tmp_path / "tls")
        tls, verify = (
            ServerTls(TlsFiles(ca.server_cert, ca.server_key)),
            ssl.create_default_context(cafile=str(ca.ca_file)),
        )
    clients = None
    if token is not None:
        clients = tmp_path / "clients"
        clients.write_text(client_line("wall-screen", token) + "\n", encoding="utf-8")
    with ServerThread(fake_worker_stats(WORKER_STATS)) as workers:
        # Two workers answer; the third URL refuses connections, as a worker that is down would.
        urls = f"{workers.url}/w1/stats,{workers.url}/w2/stats,http://127.0.0.1:{free_port()}/stats"
        settings = GatewaySettings(
            partitions=4,
            gateway_worker_stats_urls=urls,
            gateway_worker_stats_interval_s=0.5,
            gateway_clients_file=clients,
        )
        app = create_app(PredictionFeed(settings), source, tls=tls)
        with ServerThread(app, tls=None if tls is None else tls.context) as server:
            assert server.url.startswith("https://" if https else "http://")
            check_the_page(browser, server.url, source, tmp_path, token, verify)
            if token is not None:
                check_a_page_without_a_token_says_so(browser, server.url)
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


def check_a_page_without_a_token_says_so(browser: object, url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    browser.get(f"{url}/?symbol=SPY")
    browser.execute_script("sessionStorage.clear()")  # the tab kept the token: forget it, as a new tab would
    browser.refresh()
    badge = browser.find_element(By.ID, "connection")
    wait_for(lambda: badge.get_attribute("data-unauthorized") == "true", 10, "the page to say it needs a token")
    assert "token needed" in badge.text
    assert not browser.find_elements(By.CSS_SELECTOR, "#symbols tbody tr"), "a page without a token shows data"
    browser.get("about:blank")


def check_the_page(
    browser: object,
    url: str,
    source: SyntheticPredictions,
    tmp_path: Path,
    token: str | None = None,
    verify: ssl.SSLContext | bool = True,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    # The token in the fragment, which the browser never sends to the gateway; the page removes it.
    browser.get(f"{url}/?symbol=SPY" + (f"#token={token}" if token else ""))
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

    auth = {"Authorization": f"Bearer {token}"} if token else {}
    api = httpx.get(f"{url}/v1/predictions/SPY", headers=auth, timeout=5, verify=verify).json()
    if token is not None:
        assert "token" not in browser.current_url, "the token stayed in the address bar"
        assert httpx.get(f"{url}/v1/predictions/SPY", timeout=5, verify=verify).status_code == 401

    # The page rebuilds its table every 500 ms and the worker chips on every health poll: an element found by one
    # WebDriver call can be gone by the next (StaleElementReferenceException), so each read is one script.
    def cell(name: str) -> str:
        text: str = browser.execute_script(
            "return document.querySelector(arguments[0])?.textContent ?? ''", f'tr[data-symbol="SPY"] td.{name}'
        )
        return text

    wait_for(lambda: cell("price") == f"{api['last_price']:.4f}", 5, "the table to show the API's last price")
    assert cell("forecast") == f"{api['predicted_price']:.4f}"
    assert cell("error") == f"{api['abs_error_ewm_bps']:.2f}"
    assert cell("status") == api["status"]
    assert float(chart.get_attribute("data-last-price") or 0) == api["last_price"]
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#symbols tbody tr')].map(r => r.dataset.symbol)"
    )
    assert sorted(rows) == SYMBOLS
    wait_for(lambda: browser.find_element(By.ID, "h-symbols").text == "4", 5, "the health panel to count 4 symbols")

    def health(name: str) -> str:
        return browser.find_element(By.ID, name).text

    # The workers' own numbers: lag and dead letters summed over those that answered, each one listed.
    wait_for(lambda: health("h-lag") == "12", 10, "the lag of the workers' /stats (3 + 4 + 5)")
    assert health("h-dead") == "3" and health("h-reporting") == "2 of 3"
    chips = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#worker-stats .worker')]"
        ".map(c => [c.dataset.worker, {lag: c.dataset.lag, class: c.className}]))"
    )
    assert chips["w1"]["lag"] == "7" and chips["w2"]["lag"] == "5"
    assert "unreachable" in chips[next(k for k in chips if k.startswith("http"))]["class"]
    browser.save_screenshot(str(tmp_path / "dashboard.png"))
    browser.get("about:blank")  # close the page's stream before the server stops


def test_the_dashboard_lists_many_long_symbols_and_goes_live(browser: object) -> None:
    # 250 option-like symbols of 20 characters: the page asked for the first 200 in one query of 4,199 characters,
    # over the 4,096 the gateway accepts (422), and then showed nothing and never opened its stream.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    symbols = [f"OPT{n:03d}241220C0045000" for n in range(250)]
    feed = PredictionFeed(GatewaySettings(partitions=4))
    for partition in feed.partitions:
        feed.reached_end(partition, 0)
    for symbol in symbols:  # each once, before the page opens: only the page's first fill can show them
        partition = feed.partition_of(symbol)
        offset = feed.ring(partition).head + 1
        feed.ingest([Published.of(partition, offset, quiet_prediction(symbol, partition, offset), time.monotonic())])
    with ServerThread(create_app(feed)) as server:
        browser.get(f"{server.url}/")

        def listed() -> int:
            count: int = browser.execute_script("return document.querySelectorAll('#symbols tbody tr').length")
            return count

        wait_for(
            lambda: listed() == len(symbols),
            20,
            f"the table to list the {len(symbols)} symbols the gateway holds",
            diagnostics=lambda: f"{listed()} rows; badge {browser.find_element(By.ID, 'connection').text!r}",
        )
        wait_for(lambda: browser.find_element(By.ID, "connection").text == "live", 10, "the page's stream to open")
        browser.get("about:blank")  # close the page's stream before the server stops


def quiet_prediction(symbol: str, partition: int, offset: int) -> Prediction:
    now_us = time.time_ns() // 1000
    return Prediction(
        symbol, now_us // 1000, 100.0, 1.0, 100.01, 1, "READY", "linear", "1", offset, "ticks", partition, offset,
        now_us // 1000 - 3, now_us, "w-1", 2.0,
    )  # fmt: skip
