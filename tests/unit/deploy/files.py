"""The deploy files, loaded once for every deploy test: compose, Dockerfile, Kubernetes, Prometheus, Grafana."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from tickcast.common.settings import CommonSettings
from tickcast.gateway.settings import GatewaySettings
from tickcast.predictor.settings import PredictorSettings
from tickcast.predictor.snapshot_keys import new_key
from tickcast.producer.settings import ProducerSettings
from tickcast.subscriber.settings import SubscriberSettings
from tickcast.testing.data import DataSettings

ROOT = Path(__file__).resolve().parents[3]


DEPLOY = ROOT / "deploy"


COMPOSE = ROOT / "docker-compose.yml"


DOCKERFILE = DEPLOY / "Dockerfile"


K8S = DEPLOY / "k8s"


PROMETHEUS_DIR = DEPLOY / "prometheus"


ALERTS = PROMETHEUS_DIR / "alerts.yml"


DASHBOARD = DEPLOY / "grafana" / "dashboards" / "tickcast.json"


GRAFANA_PROVISIONING = DEPLOY / "grafana" / "provisioning"


#: Oldest Kubernetes the manifests promise to work on (bundled offline by kubernetes-validate).
K8S_VERSION = "1.28"


SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    CommonSettings,
    PredictorSettings,
    ProducerSettings,
    SubscriberSettings,
    GatewaySettings,
)


PREDICTOR_JOB = "tickcast-predictor"


GATEWAY_JOB = "tickcast-gateway"


GATEWAY_ALERTS = PROMETHEUS_DIR / "gateway_alerts.yml"


#: Prometheus on Kubernetes: scrapes the pods of deploy/k8s (and its overlays) under the jobs above.
K8S_PROMETHEUS = PROMETHEUS_DIR / "kubernetes.yml"


ALERT_NAMES = {
    "TickcastLagGrowing",
    "TickcastNoPredictions",
    "TickcastDeadLetterRate",
    "TickcastLatencyP99High",
    "TickcastWorkerDown",
    "TickcastModelErrorDrift",
    "TickcastPartitionNotReady",
    "TickcastPartitionHalted",
    "TickcastFleetDrifting",
}


# A metric name in PromQL: tickcast_ then word characters (labels like job="tickcast-predictor" have a dash).
METRIC_IN_PROMQL = re.compile(r"\btickcast_[a-z0-9_]+")


# Grafana's own variables are not PromQL; promtool needs real durations in their place.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE)
    return loaded


def compose_env(service: str) -> dict[str, str]:
    env = compose()["services"][service].get("environment", {})
    if isinstance(env, list):  # the "KEY=value" spelling
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


# ${NAME:?message} (required from the shell or .env) and ${NAME:-default}, as compose interpolates them.
COMPOSE_VARIABLE = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+)(?::(?P<kind>[?-])(?P<text>[^}]*))?\}$")


def interpolated(env: dict[str, str]) -> dict[str, str]:
    """``env`` as compose would run it from a shell that sets every required variable (to a valid random key)."""
    out = {}
    for name, value in env.items():
        match = COMPOSE_VARIABLE.match(value)
        out[name] = value if match is None else new_key() if match["kind"] == "?" else match["text"] or ""
    return out


@cache
def k8s_documents() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(file name, manifest) for every Kubernetes object under deploy/k8s (not the kustomization)."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append((path.name, doc))
    return tuple(docs)


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    found = [doc for _, doc in k8s_documents() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name!r} under {K8S}, found {len(found)}"
    return found[0]


def configmap() -> dict[str, str]:
    data: dict[str, str] = k8s_object("ConfigMap", "tickcast-config")["data"]
    return data


def secret() -> dict[str, str]:
    obj = k8s_object("Secret", "tickcast-secrets")
    return {**obj.get("stringData", {}), **obj.get("data", {})}


def containers(kind: str, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = k8s_object(kind, name)["spec"]["template"]["spec"]["containers"]
    return found


def scaled_object() -> dict[str, Any]:
    return k8s_object("ScaledObject", "tickcast-predictor")


def trigger(kind: str) -> dict[str, str]:
    found = [t["metadata"] for t in scaled_object()["spec"]["triggers"] if t["type"] == kind]
    assert len(found) == 1, f"expected one {kind} trigger in the ScaledObject"
    metadata: dict[str, str] = found[0]
    return metadata


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def referenced_metric_names() -> set[str]:
    """Every tickcast_* series that an alert or a dashboard panel queries."""
    exprs = [rule["expr"] for rule in alert_rules()] + dashboard_exprs()
    return {name for expr in exprs for name in METRIC_IN_PROMQL.findall(expr)}


def setting_env_names() -> set[str]:
    return {f"TICKCAST_{field.upper()}" for cls in SETTINGS_CLASSES for field in cls.model_fields}


def as_kwargs(env: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("TICKCAST_").lower(): v for k, v in env.items() if k.startswith("TICKCAST_")}


def web_port(env: dict[str, str]) -> int:
    return int(env.get("TICKCAST_WEB_PORT", PredictorSettings.model_fields["web_port"].default))


TICKCAST_SERVICES = ("topics", "producer", "predictor", "gateway")


def env_sources() -> dict[str, dict[str, str]]:
    sources = {f"compose:{name}": compose_env(name) for name in TICKCAST_SERVICES}
    sources["k8s:ConfigMap"] = configmap()
    sources["k8s:Secret"] = secret()
    for kind, name in (
        ("Deployment", "tickcast-predictor"),
        ("Deployment", "tickcast-producer"),
        ("Deployment", "tickcast-gateway"),
        ("Job", "tickcast-topics"),
    ):
        for container in containers(kind, name):
            sources[f"k8s:{kind}/{name}"] = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    return sources


WORKLOADS = (
    ("Deployment", "tickcast-predictor"),
    ("Deployment", "tickcast-producer"),
    ("Deployment", "tickcast-gateway"),
    ("Job", "tickcast-topics"),
)


#: Where the image keeps the only thing a service writes (Faust's scratch directory).
WRITABLE_DIR = "/tmp"


def dockerfile_env() -> dict[str, str]:
    """``ENV`` settings of the Dockerfile (``ENV A=1 \\ B=2`` spelling)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    found = re.findall(r"^ENV (.+)$", text, re.MULTILINE)
    return dict(pair.split("=", 1) for line in found for pair in line.split())


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """The documents kustomize renders from ``directory``: standalone ``kustomize build`` (``.ci/run`` installs
    it), else kubectl's built-in ``kubectl kustomize``; with neither, CI (``CI=true``) fails and elsewhere it skips."""
    if (standalone := shutil.which("kustomize")) is not None:
        command = [standalone, "build", str(directory)]
    elif (kubectl := shutil.which("kubectl")) is not None:
        command = [kubectl, "kustomize", str(directory)]
    else:
        reason = "neither kustomize nor kubectl on PATH (.ci/install-kustomize installs kustomize)"
        if DataSettings().ci:
            pytest.fail(f"{reason}; CI must render the deploy files", pytrace=False)
        pytest.skip(reason)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    where = directory.relative_to(DEPLOY.parent)
    assert result.returncode == 0, f"{' '.join(command[:2])} {where} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def promtool() -> str:
    """promtool's path; without it the alert rules are untested, which fails CI (``CI=true``) and skips elsewhere."""
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool not installed (Debian package `prometheus`; .ci/run installs it)"
        if DataSettings().ci:
            pytest.fail(f"{reason}; CI must run the alert rule tests", pytrace=False)
        pytest.skip(reason)
    return found


def run_promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> None:
    result = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def gateway_port() -> int:
    return int(compose_env("gateway")["TICKCAST_GATEWAY_PORT"])
