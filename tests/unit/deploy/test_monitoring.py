"""Prometheus alerts and the Grafana dashboard query only metrics the code defines, and promtool accepts them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.unit.deploy.files import (
    ALERT_NAMES,
    ALERTS,
    DASHBOARD,
    GATEWAY_ALERTS,
    GATEWAY_JOB,
    GRAFANA_PROVISIONING,
    GRAFANA_VARIABLES,
    METRIC_IN_PROMQL,
    PREDICTOR_JOB,
    PROMETHEUS_DIR,
    alert_rules,
    dashboard_exprs,
    load_yaml,
    referenced_metric_names,
    run_promtool,
)
from tickcast.gateway.metrics import GatewayMetrics
from tickcast.predictor.metrics import series_names


def test_alerts_and_dashboard_use_the_scrape_job_name() -> None:
    jobs = set(re.findall(r'job="([^"]+)"', ALERTS.read_text(encoding="utf-8") + " ".join(dashboard_exprs())))
    assert jobs == {PREDICTOR_JOB}, f"alerts/dashboard refer to jobs {jobs}, prometheus.yml scrapes {PREDICTOR_JOB}"


def test_grafana_datasource_is_the_one_the_dashboard_uses() -> None:
    [source] = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus" and source["url"].endswith(":9090")
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    uids = {target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]}
    assert uids == {source["uid"]}


def test_the_nine_alerts_exist() -> None:
    assert {rule["alert"] for rule in alert_rules()} == ALERT_NAMES


def test_alerts_and_dashboard_only_query_metrics_the_worker_defines() -> None:
    referenced = referenced_metric_names()
    assert referenced, "no tickcast_* metric found in the alert and dashboard expressions"
    undefined = sorted(referenced - series_names())
    assert not undefined, f"queried but not defined in tickcast/predictor/metrics.py: {undefined}"


def test_dashboard_has_the_panels_operators_need() -> None:
    exprs = " ".join(dashboard_exprs())
    for needle in (
        "tickcast_ticks_total",
        "tickcast_predictions_total",
        "histogram_quantile(0.5, sum by (le) (rate(tickcast_end_to_end_latency_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(tickcast_end_to_end_latency_seconds_bucket",
        "by (partition) (tickcast_consumer_lag)",
        "tickcast_assigned_partitions",
        f'up{{job="{PREDICTOR_JOB}"}}',
        "by (reason) (rate(tickcast_dead_letters_total",
        "tickcast_model_abs_error_bps",
        "sum(tickcast_symbols_drifting) / clamp_min(sum(tickcast_symbols), 1)",
        "by (kind) (rate(tickcast_model_events_total",
    ):
        assert needle in exprs, f"the dashboard has no panel querying {needle!r}"


def test_every_alert_has_a_firing_promtool_case() -> None:
    tests = load_yaml(PROMETHEUS_DIR / "alerts_test.yml")["tests"]
    firing = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case.get("exp_alerts")}
    assert firing == ALERT_NAMES


def test_promtool_accepts_the_config_and_rules() -> None:
    run_promtool("check", "config", "prometheus.yml")
    run_promtool("check", "rules", "alerts.yml")


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    run_promtool("test", "rules", "alerts_test.yml")


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses PromQL only inside rules: wrap each panel query in a recording rule.
    rules = []
    for i, expr in enumerate(dashboard_exprs()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    (tmp_path / "dashboard_rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run_promtool("check", "rules", "dashboard_rules.yml", cwd=tmp_path)


def test_gateway_alerts_query_only_gateway_metrics_and_each_has_a_firing_case() -> None:
    rules = [rule for group in load_yaml(GATEWAY_ALERTS)["groups"] for rule in group["rules"]]
    metrics = GatewayMetrics()
    metrics.dropped.labels("slow_consumer")  # a labelled series exists once it has a child
    defined = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    queried = {name for rule in rules for name in METRIC_IN_PROMQL.findall(rule["expr"])}
    assert queried and queried <= defined, f"not defined in tickcast/gateway/metrics.py: {queried - defined}"
    assert set(re.findall(r'job="([^"]+)"', GATEWAY_ALERTS.read_text(encoding="utf-8"))) == {GATEWAY_JOB}
    tests = load_yaml(PROMETHEUS_DIR / "gateway_alerts_test.yml")["tests"]
    firing = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case.get("exp_alerts")}
    assert firing == {rule["alert"] for rule in rules}


def test_promtool_unit_tests_of_the_gateway_alerts_pass() -> None:
    run_promtool("check", "rules", "gateway_alerts.yml")
    run_promtool("test", "rules", "gateway_alerts_test.yml")
