"""Prometheus on Kubernetes scrapes every tickcast pod once, under the job name its alerts and dashboard select.

The alert rules and the dashboard select ``job="tickcast-predictor"`` and ``job="tickcast-gateway"``. Compose's
``prometheus.yml`` names its scrape jobs so; on Kubernetes the job name comes from ``deploy/prometheus/kubernetes.yml``.
No cluster here: the pods that ``kustomize build`` renders are discovered as Prometheus' ``kubernetes_sd_configs``
(role ``pod``) would (one target per container port, ``__meta_kubernetes_*`` labels), and the file's
``relabel_configs`` are applied by a small implementation of the actions it uses (Prometheus' semantics: the
regex anchored at both ends, source values joined by ``;``, ``$1`` in the replacement, an empty result deleting
the label).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.files import (
    ALERTS,
    DEPLOY,
    GATEWAY_ALERTS,
    GATEWAY_JOB,
    K8S,
    K8S_PROMETHEUS,
    PREDICTOR_JOB,
    PROMETHEUS_DIR,
    dashboard_exprs,
    kustomize_build,
    load_yaml,
    promtool,
    run_promtool,
)

#: deploy/k8s and the overlays of it that ship: the gateway over HTTPS, Kafka with SASL/TLS.
OVERLAYS = (K8S, DEPLOY / "k8s-gateway-tls", DEPLOY / "kafka-security")

#: The job each scraped component's alerts select.
JOB_OF_COMPONENT = {"predictor": PREDICTOR_JOB, "gateway": GATEWAY_JOB}

#: A namespace that is not the default one: kubectl apply -k ... -n <namespace> may pick any.
NAMESPACE = "markets-prod"

#: Pod addresses in both families: a dual-stack or IPv6 cluster gives pods IPv6 addresses.
POD_IPS = ("10.244.3.17", "fd00:10:244:3::11")

#: The Kubernetes pod phases; only Running pods (and Unknown ones: a lost node) are workers that can be down.
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")

#: What a kubernetes_sd_config may hold: Prometheus' Kubernetes discovery settings and its HTTP client settings.
KUBERNETES_SD_FIELDS = {
    "api_server",
    "role",
    "kubeconfig_file",
    "namespaces",
    "selectors",
    "attach_metadata",
    "basic_auth",
    "authorization",
    "oauth2",
    "bearer_token",
    "bearer_token_file",
    "tls_config",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "follow_redirects",
    "enable_http2",
}


def scrape_config() -> dict[str, Any]:
    configs = load_yaml(K8S_PROMETHEUS)["scrape_configs"]
    pod_configs = [c for c in configs if any(sd.get("role") == "pod" for sd in c.get("kubernetes_sd_configs", []))]
    assert len(pod_configs) == 1, f"{K8S_PROMETHEUS.name}: expected one scrape config of pods, got {pod_configs}"
    found: dict[str, Any] = pod_configs[0]
    return found


def label_name(name: str) -> str:
    """A Kubernetes label or annotation name as Prometheus spells it in a meta label."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def discovered(pod: dict[str, Any], *, name: str, ip: str, phase: str = "Running") -> list[dict[str, str]]:
    """The targets Prometheus' pod role gives for ``pod`` (a pod template): one per declared container port, one
    for a container without ports; init containers too (newer Prometheus lists them)."""
    metadata, spec = pod["metadata"], pod["spec"]
    common = {
        "__meta_kubernetes_namespace": NAMESPACE,
        "__meta_kubernetes_pod_name": name,
        "__meta_kubernetes_pod_ip": ip,
        "__meta_kubernetes_pod_phase": phase,
        "__meta_kubernetes_pod_ready": "true" if phase == "Running" else "false",
    }
    for kind in ("label", "annotation"):
        for key, value in metadata.get(f"{kind}s", {}).items():
            common[f"__meta_kubernetes_pod_{kind}_{label_name(key)}"] = str(value)
            common[f"__meta_kubernetes_pod_{kind}present_{label_name(key)}"] = "true"
    targets = []
    for init, containers in ((False, spec["containers"]), (True, spec.get("initContainers", []))):
        for container in containers:
            labels = {
                **common,
                "__meta_kubernetes_pod_container_name": container["name"],
                "__meta_kubernetes_pod_container_init": str(init).lower(),
            }
            ports = container.get("ports", [])
            if not ports:
                targets.append({**labels, "__address__": ip})
            for port in ports:
                targets.append(
                    {
                        **labels,
                        "__address__": host_port(ip, port["containerPort"]),
                        "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                        "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
                        "__meta_kubernetes_pod_container_port_protocol": port.get("protocol", "TCP"),
                    }
                )
    return targets


def expand(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.Expand, as Prometheus expands ``replacement`` and ``target_label``: ``$1``, ``${1}``, ``$name``,
    ``$$``; a name takes every letter, digit and underscore that follows, and an unknown group is empty."""

    def group(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        ref = m.group(1) or m.group(2)
        try:
            return match.group(int(ref) if ref.isdigit() else ref) or ""
        except IndexError:  # no such group
            return ""

    return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)", group, template)


def relabel(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """``labels`` after ``rules`` (Prometheus relabel_config semantics), or None when a rule drops the target."""
    labels = dict(labels)
    for rule in rules:
        action = rule.get("action", "replace")
        regex = re.compile(f"(?:{rule.get('regex', '(.*)')})")
        value = rule.get("separator", ";").join(labels.get(name, "") for name in rule.get("source_labels", []))
        match = regex.fullmatch(value)
        if action == "keep":
            if match is None:
                return None
        elif action == "drop":
            if match is not None:
                return None
        elif action == "replace":
            if match is None:
                continue
            target = expand(rule["target_label"], match)
            result = expand(rule.get("replacement", "$1"), match)
            if result:
                labels[target] = result
            else:
                labels.pop(target, None)
        elif action == "labelmap":
            for name, val in list(labels.items()):
                if (m := regex.fullmatch(name)) is not None:
                    labels[expand(rule.get("replacement", "$1"), m)] = val
        else:
            pytest.fail(f"{K8S_PROMETHEUS.name}: relabel action {action!r} is not implemented by this test")
    return labels


def scrape_targets(pod: dict[str, Any], *, name: str, ip: str, phase: str = "Running") -> list[dict[str, str]]:
    """What Prometheus scrapes for ``pod``: the discovered targets relabeled, the duplicates merged (targets whose
    labels are equal are one target), the meta labels gone, ``instance`` defaulting to the address."""
    config = scrape_config()
    initial = {
        "job": config["job_name"],
        "__scheme__": config.get("scheme", "http"),
        "__metrics_path__": config.get("metrics_path", "/metrics"),
    }
    found: list[dict[str, str]] = []
    for target in discovered(pod, name=name, ip=ip, phase=phase):
        labels = relabel({**initial, **target}, config.get("relabel_configs", []))
        if labels is None or not labels.get("__address__"):
            continue
        labels.setdefault("instance", labels["__address__"])
        kept = {k: v for k, v in labels.items() if not k.startswith("__meta_")}
        if kept not in found:
            found.append(kept)
    return found


@cache
def pod_templates(directory: Path) -> tuple[tuple[str, dict[str, Any]], ...]:
    """(workload name, pod template) of every workload ``kustomize build directory`` renders (once per run)."""
    return tuple(
        (doc["metadata"]["name"], doc["spec"]["template"])
        for doc in kustomize_build(directory)
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    )


def served_at(pod: dict[str, Any]) -> tuple[int, str]:
    """The port and scheme the pod's container answers /health on (its readiness probe): /metrics is on the same."""
    for container in pod["spec"]["containers"]:
        probe = container.get("readinessProbe", {}).get("httpGet")
        if probe is None:
            continue
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        port = probe["port"] if isinstance(probe["port"], int) else ports[probe["port"]]
        return port, probe.get("scheme", "HTTP").lower()
    raise AssertionError(f"no container of {pod['metadata']['labels']} has an HTTP readiness probe")


def jobs_selected_by_rules_and_dashboard() -> set[str]:
    text = ALERTS.read_text(encoding="utf-8") + GATEWAY_ALERTS.read_text(encoding="utf-8")
    return set(re.findall(r'job="([^"]+)"', text + " ".join(dashboard_exprs())))


@pytest.mark.parametrize("directory", OVERLAYS, ids=lambda d: str(d.relative_to(DEPLOY.parent)))
def test_every_annotated_pod_is_one_target_under_the_job_its_alerts_select(directory: Path) -> None:
    scraped = set()
    for workload, pod in pod_templates(directory):
        annotations = pod["metadata"].get("annotations", {})
        for ip in POD_IPS:
            targets = scrape_targets(pod, name=f"{workload}-7d9f8-x2x4q", ip=ip)
            if annotations.get("prometheus.io/scrape") != "true":
                assert not targets, f"{workload} is not annotated for scraping, yet would be scraped: {targets}"
                continue
            component = pod["metadata"]["labels"]["app.kubernetes.io/component"]
            port, scheme = served_at(pod)
            assert len(targets) == 1, f"{workload} ({ip}) would be scraped {len(targets)} times: {targets}"
            [target] = targets
            expected = {
                "job": JOB_OF_COMPONENT[component],
                "__address__": host_port(ip, port),
                "__scheme__": scheme,
                "__metrics_path__": "/metrics",
            }
            assert {k: target.get(k) for k in expected} == expected, f"{workload} ({ip}) scraped as {target}"
            assert target["namespace"] == NAMESPACE and target["pod"] == f"{workload}-7d9f8-x2x4q"
            scraped.add(target["job"])
    assert scraped == set(JOB_OF_COMPONENT.values()), f"{directory.name}: scraped jobs {scraped}"


def test_the_https_gateway_is_scraped_over_https() -> None:
    # The overlay's whole point for Prometheus: plain HTTP to a TLS port gets no metrics (and up == 0).
    [(_, gateway)] = [(w, p) for w, p in pod_templates(DEPLOY / "k8s-gateway-tls") if w == "tickcast-gateway"]
    [target] = scrape_targets(gateway, name="tickcast-gateway-0", ip=POD_IPS[0])
    assert target["__scheme__"] == "https"


def test_pods_of_other_applications_and_workers_that_are_not_running_are_not_scraped() -> None:
    [(_, predictor)] = [(w, p) for w, p in pod_templates(K8S) if w == "tickcast-predictor"]
    other = {
        "metadata": {
            "labels": {"app.kubernetes.io/name": "ledger", "app.kubernetes.io/component": "predictor"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "6066"},
        },
        "spec": predictor["spec"],
    }
    assert scrape_targets(other, name="ledger-0", ip=POD_IPS[0]) == []
    # The rules that name the job may go into a generic annotation-driven job (README): other pods keep its name.
    naming = [rule for rule in scrape_config()["relabel_configs"] if rule.get("target_label") == "job"]
    [target] = discovered(other, name="ledger-0", ip=POD_IPS[0])
    assert relabel({"job": "kubernetes-pods", **target}, naming) == {"job": "kubernetes-pods", **target}
    for phase in PHASES:
        targets = scrape_targets(predictor, name="tickcast-predictor-0", ip=POD_IPS[0], phase=phase)
        # A Pending pod holds no partition yet, a Succeeded or Failed one (evicted) none any more: as targets they
        # would be down and fire TickcastWorkerDown for a worker that is not missing.
        assert len(targets) == (1 if phase in ("Running", "Unknown") else 0), f"phase {phase}: {targets}"


def test_every_job_the_alerts_and_dashboard_select_is_scraped_by_compose_and_by_kubernetes() -> None:
    selected = jobs_selected_by_rules_and_dashboard()
    assert selected == {PREDICTOR_JOB, GATEWAY_JOB}
    compose_configs = load_yaml(PROMETHEUS_DIR / "prometheus.yml")["scrape_configs"]
    assert not any("relabel_configs" in c for c in compose_configs), "compose's jobs are named by job_name alone"
    compose_jobs = {c["job_name"] for c in compose_configs}
    assert selected <= compose_jobs, f"prometheus.yml scrapes {compose_jobs}, the rules select {selected}"
    k8s_jobs = {
        target["job"]
        for directory in OVERLAYS
        for workload, pod in pod_templates(directory)
        for target in scrape_targets(pod, name=workload, ip=POD_IPS[0])
    }
    assert selected <= k8s_jobs, f"{K8S_PROMETHEUS.name} scrapes {k8s_jobs}, the rules select {selected}"


def test_the_kubernetes_config_loads_the_rules_and_promtool_accepts_it(tmp_path: Path) -> None:
    config = load_yaml(K8S_PROMETHEUS)
    assert set(config["rule_files"]) == {ALERTS.name, GATEWAY_ALERTS.name}
    for scrape in config["scrape_configs"]:
        for sd in scrape.get("kubernetes_sd_configs", []):
            assert set(sd) <= KUBERNETES_SD_FIELDS and sd["role"] == "pod", f"not a kubernetes_sd_config: {sd}"
            assert set(sd.get("namespaces", {})) <= {"own_namespace", "names"}
    # Debian's Prometheus, whose promtool CI installs, is built without Kubernetes discovery and rejects the key
    # kubernetes_sd_configs. So promtool checks a copy in which each is a file_sd_config instead: the rest (the
    # relabel rules' actions, regexes and target labels, the rule files) as Prometheus would load it.
    for scrape in config["scrape_configs"]:
        if scrape.pop("kubernetes_sd_configs", None) is not None:
            scrape["file_sd_configs"] = [{"files": ["pods.json"]}]
    (tmp_path / K8S_PROMETHEUS.name).write_text(yaml.safe_dump(config), encoding="utf-8")
    for rules in (ALERTS, GATEWAY_ALERTS):
        shutil.copy(rules, tmp_path / rules.name)
    run_promtool("check", "config", K8S_PROMETHEUS.name, cwd=tmp_path)
    # The file itself, with a promtool that has Kubernetes discovery (upstream's).
    result = subprocess.run(
        [promtool(), "check", "config", K8S_PROMETHEUS.name],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "field kubernetes_sd_configs not found" not in result.stdout + result.stderr:
        assert result.returncode == 0, f"promtool check config failed:\n{result.stdout}\n{result.stderr}"
