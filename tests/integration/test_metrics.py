"""A real worker on the session broker serves /metrics with every series the alerts and dashboard query.

It runs with every secret set (snapshot keys, bearer token): its HTTP server is closed down to read-only views,
and no secret appears in any of its log lines, HTTP answers or dead-letter headers.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.deploy.files import referenced_metric_names
from tickcast.common.settings import CommonSettings
from tickcast.common.topics import symbol_key
from tickcast.ops.dlq import read_dead_letters
from tickcast.ops.workers import WorkerProcess
from tickcast.predictor.snapshot_keys import new_key
from tickcast.producer.synthetic import SyntheticFeed, symbol_names
from tickcast.testing.pipeline import Pipeline, wait_for_assignment
from tickcast.testing.stats import worker_stats
from tickcast.testing.waiting import wait_for

pytestmark = pytest.mark.integration

TICKS = 300
BAD = 5
SYMBOLS = 6

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
SECRETS = {
    "TICKCAST_SNAPSHOT_KEY": new_key(),
    "TICKCAST_SNAPSHOT_PREVIOUS_KEYS": f"{new_key()},{new_key()}",
    "TICKCAST_WEB_TOKEN": new_key(),
}


def answer(worker: WorkerProcess, path: str, method: str = "GET", token: str | None = None) -> tuple[int, str]:
    """(status, body) of one request to the worker's HTTP server."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{worker.web_port}{path}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode("utf-8")


def scrape(worker: WorkerProcess) -> tuple[str, Samples] | None:
    """(content type, samples) of the worker's /metrics, or None while it is not answering."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/metrics", timeout=2) as response:
            content_type = response.headers.get("Content-Type", "")
            text = response.read().decode("utf-8")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return content_type, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), float("nan"))


def test_metrics_page_exports_what_alerts_and_dashboard_need(pipeline: Pipeline) -> None:
    pipeline.extra_env.update(SECRETS)
    [worker] = pipeline.start_workers(1)
    wait_for_assignment(pipeline, [worker])

    publisher = pipeline.publisher()
    start_ms = time.time_ns() // 1_000_000
    clock = iter(range(start_ms, start_ms + 10**9, 7))
    ticks = SyntheticFeed(symbol_names(SYMBOLS), seed=11, clock_ms=lambda: next(clock)).take(TICKS)
    for tick in ticks:
        publisher.publish(tick)
    for _ in range(BAD):
        publisher.publish_raw(symbol_key(ticks[0].symbol), b"not avro")  # no magic byte: a dead letter
    assert publisher.close() == 0 and publisher.stats.delivered == TICKS + BAD

    # Done = every record counted and, with nothing left to read, no lag on any partition.
    last: list[tuple[str, Samples]] = []

    def counted_and_caught_up() -> bool:
        scraped = scrape(worker)
        if scraped is None:
            return False
        last[:] = [scraped]
        lag = [v for (name, _), v in scraped[1].items() if name == "tickcast_consumer_lag"]
        return value(scraped[1], "tickcast_ticks_total") == TICKS + BAD and bool(lag) and sum(lag) == 0

    def last_scrape() -> str:
        seen = {k: v for k, v in (last[0][1] if last else {}).items() if not k[0].endswith("_bucket")}
        return f"last scrape: {seen}\n{pipeline.worker_logs()}"

    wait_for(
        counted_and_caught_up,
        90,
        f"/metrics to show {TICKS + BAD} ticks with zero lag",
        check=pipeline.check_workers_alive,
        diagnostics=last_scrape,
    )
    content_type, samples = last[0]
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    exported = {name for name, _ in samples}
    missing = sorted(referenced_metric_names() - exported)
    assert not missing, f"alerts or dashboard query series the worker does not export: {missing}"

    assert value(samples, "tickcast_ticks_total") == TICKS + BAD
    assert value(samples, "tickcast_predictions_total") == TICKS
    assert value(samples, "tickcast_dead_letters_total", reason="bad_magic_byte") == BAD
    statuses = value(samples, "tickcast_prediction_status_total", status="READY") + value(
        samples, "tickcast_prediction_status_total", status="WARMING_UP"
    )
    assert statuses == TICKS
    assert value(samples, "tickcast_tick_processing_seconds_count") == TICKS + BAD
    assert value(samples, "tickcast_end_to_end_latency_seconds_count") == TICKS
    assert value(samples, "tickcast_assigned_partitions") == pipeline.partitions
    assert value(samples, "tickcast_rebalances_total") >= 1
    assert value(samples, "tickcast_symbols") == SYMBOLS
    assert value(samples, "tickcast_model_abs_error_bps") >= 0
    info = [labels for name, labels in samples if name == "tickcast_worker_info"]
    assert [dict(labels)["worker"] for labels in info] == [worker.worker_id]
    partitions = {dict(labels)["partition"] for name, labels in samples if name == "tickcast_consumer_lag"}
    assert partitions <= {str(p) for p in range(pipeline.partitions)}, "lag is labelled by ticks partitions only"

    # /stats, which gateways poll for the dashboard, tells the same lag (none left) and dead letters.
    stats = worker_stats(worker)
    assert stats is not None
    assert stats["lag"] == {partition: 0 for partition in sorted(partitions)}, stats["lag"]
    assert stats["dead_letters"] == {"bad_magic_byte": BAD}

    # Closed doors, on the real worker: Faust's views are not mounted, nothing but GET/HEAD is served,
    # and predictions want the token.
    token = SECRETS["TICKCAST_WEB_TOKEN"]
    symbol = ticks[0].symbol
    answers = {
        "router": answer(worker, "/router/"),
        "table": answer(worker, "/table/"),
        "post": answer(worker, "/health", method="POST"),
        "delete": answer(worker, f"/predictions/{symbol}", method="DELETE", token=token),
        "no token": answer(worker, f"/predictions/{symbol}"),
        "token": answer(worker, f"/predictions/{symbol}", token=token),
        "bad symbol": answer(worker, "/predictions/" + "X" * 200, token=token),
        "stats": answer(worker, "/stats"),
        "metrics": answer(worker, "/metrics"),
    }
    statuses = {name: status for name, (status, _) in answers.items()}
    assert statuses == {
        "router": 404, "table": 404, "post": 405, "delete": 405, "no token": 401, "token": 200, "bad symbol": 400,
        "stats": 200, "metrics": 200,
    }, answers  # fmt: skip

    # No secret anywhere: every log line of the worker (start to stop), every HTTP answer, every dead letter.
    pipeline.stop()
    letters = read_dead_letters(CommonSettings(**pipeline.settings_kwargs()))
    assert len(letters) == BAD
    logs = [path.read_text(errors="replace") for path in sorted(pipeline.log_dir.glob("*.log"))]
    assert logs and any("partitions_assigned" in text for text in logs), "no worker log was captured"
    seen = [
        *logs,
        *(body for _, body in answers.values()),
        *(f"{name}={value}" for letter in letters for name, value in letter.headers.items()),
    ]
    secrets = [key for value in SECRETS.values() for key in value.split(",")]
    # Reported by the first 6 characters and what precedes the secret, never the whole secret.
    leaked = [(secret[:6], text[: text.index(secret)][-160:]) for text in seen for secret in secrets if secret in text]
    assert not leaked, f"secrets leaked (their first 6 chars, and the text before them): {leaked}"
