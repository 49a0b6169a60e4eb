"""The deploy files agree with the code and with each other: compose, Prometheus, Grafana, Kubernetes, KEDA."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic_settings import BaseSettings

from tickcast.common.settings import CommonSettings
from tickcast.gateway.metrics import GatewayMetrics
from tickcast.gateway.settings import GatewaySettings
from tickcast.predictor.metrics import series_names
from tickcast.predictor.settings import PredictorSettings
from tickcast.predictor.snapshot_keys import PLACEHOLDER_KEYS, new_key
from tickcast.producer.settings import ProducerSettings
from tickcast.subscriber.settings import SubscriberSettings
from tickcast.testing.data import DataSettings

ROOT = Path(__file__).resolve().parents[2]
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
ALERT_NAMES = {
    "TickcastLagGrowing",
    "TickcastNoPredictions",
    "TickcastDeadLetterRate",
    "TickcastLatencyP99High",
    "TickcastWorkerDown",
    "TickcastModelErrorDrift",
    "TickcastPartitionNotReady",
    "TickcastFleetDrifting",
}
# A metric name in PromQL: tickcast_ then word characters (labels like job="tickcast-predictor" have a dash).
METRIC_IN_PROMQL = re.compile(r"\btickcast_[a-z0-9_]+")
# Grafana's own variables are not PromQL; promtool needs real durations in their place.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


# ---------------------------------------------------------------- loading


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


# ---------------------------------------------------------------- compose and image


def test_compose_runs_the_whole_pipeline_from_one_image() -> None:
    services = compose()["services"]
    expected = {"kafka", "schema-registry", *TICKCAST_SERVICES, "prometheus", "grafana"}
    assert expected <= set(services), f"missing services: {expected - set(services)}"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    kafka_env = services["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"], "Kafka must run in KRaft mode (no ZooKeeper)"
    assert "zookeeper" not in services
    commands = {name: services[name]["command"] for name in TICKCAST_SERVICES}
    assert commands["topics"] == ["topics", "create"]
    assert commands["producer"][:2] == ["produce", "synthetic"]
    assert commands["predictor"] == ["worker"]
    images = {services[name]["image"] for name in TICKCAST_SERVICES}
    assert len(images) == 1, f"the tickcast services should share one image, got {images}"
    for name in TICKCAST_SERVICES:
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_predictor_service_can_be_scaled() -> None:
    predictor = compose()["services"]["predictor"]
    # A fixed name or host port would make `docker compose up --scale predictor=4` fail.
    assert "container_name" not in predictor
    assert "ports" not in predictor, "publish no host port; Prometheus reaches replicas on the compose network"


def test_dockerfile_is_one_image_with_tickcast_as_entrypoint() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert 'ENTRYPOINT ["tickcast"]' in text
    assert re.search(r"pip install /src\b", text)
    assert f"EXPOSE {web_port({})}" in text


def test_compose_mounts_what_prometheus_and_grafana_read() -> None:
    services = compose()["services"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in services["prometheus"]["volumes"]}
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    # prometheus.yml names its rule file relative to itself, so it must sit beside it.
    rule_files = load_yaml(PROMETHEUS_DIR / "prometheus.yml")["rule_files"]
    for rule_file in rule_files:
        assert mounts[f"./deploy/prometheus/{rule_file}"] == f"/etc/prometheus/{rule_file}"
    grafana = {v.split(":")[0]: v.split(":")[1] for v in services["grafana"]["volumes"]}
    provider = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "tickcast.yml")["providers"][0]
    assert grafana["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert grafana["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


# ---------------------------------------------------------------- settings


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


@pytest.mark.parametrize("source", sorted(env_sources()))
def test_every_tickcast_variable_is_a_real_setting(source: str) -> None:
    env = env_sources()[source]
    unknown = sorted(k for k in env if k.startswith("TICKCAST_") and k not in setting_env_names())
    assert not unknown, f"{source} sets variables no tickcast settings class reads: {unknown}"


def test_configmap_and_secret_hold_only_tickcast_settings() -> None:
    for name, data in (("ConfigMap", configmap()), ("Secret", secret())):
        stray = sorted(k for k in data if not k.startswith("TICKCAST_"))
        assert not stray, f"{name} carries keys that are not TICKCAST_* settings: {stray}"
    assert "TICKCAST_SCHEMA_REGISTRY_URL" in secret(), "the registry URL can carry credentials: keep it in the Secret"
    assert "TICKCAST_SCHEMA_REGISTRY_URL" not in configmap()


def test_deploy_values_are_valid_settings() -> None:
    # Not only the names: every value must pass the settings' own validation (types, ranges, patterns).
    for service, cls in (("topics", CommonSettings), ("producer", ProducerSettings), ("predictor", PredictorSettings)):
        cls(**as_kwargs(interpolated(compose_env(service))))
    k8s_env = {**configmap(), **secret()}
    for cls in (CommonSettings, ProducerSettings, PredictorSettings):
        cls(**as_kwargs(k8s_env))


def test_no_snapshot_key_is_written_in_any_deploy_file() -> None:
    # A key in git is public: compose must require one from the shell, Kubernetes from a Secret made at deploy time.
    required = COMPOSE_VARIABLE.match(compose_env("predictor")["TICKCAST_SNAPSHOT_KEY"])
    assert required is not None and required["kind"] == "?" and required["text"], "compose must require the key"
    assert "TICKCAST_SNAPSHOT_KEY" not in secret(), "the Secret in git must not hold the snapshot key"
    [predictor] = containers("Deployment", "tickcast-predictor")
    key = {e["name"]: e for e in predictor["env"]}["TICKCAST_SNAPSHOT_KEY"]["valueFrom"]["secretKeyRef"]
    assert key["optional"] is False, "a predictor without its key must not start"
    assert key["name"] not in {doc["metadata"]["name"] for _, doc in k8s_documents() if doc["kind"] == "Secret"}
    shipped = [COMPOSE, DOCKERFILE, *K8S.glob("*.yaml"), ROOT / "README.md"]
    for path in shipped:
        text = path.read_text(encoding="utf-8")
        assert not [p for p in PLACEHOLDER_KEYS if p in text], f"{path.name} still shows a placeholder key"


# ---------------------------------------------------------------- agreement between files


def test_worker_web_port_agrees_everywhere() -> None:
    port = web_port(compose_env("predictor"))
    assert web_port(configmap()) == port
    sd = load_yaml(PROMETHEUS_DIR / "prometheus.yml")["scrape_configs"]
    predictor_jobs = [job for job in sd if job["job_name"] == PREDICTOR_JOB]
    assert len(predictor_jobs) == 1, f"prometheus.yml needs one job named {PREDICTOR_JOB}"
    assert all(cfg["port"] == port for cfg in predictor_jobs[0]["dns_sd_configs"])
    assert predictor_jobs[0].get("metrics_path", "/metrics") == "/metrics"
    assert predictor_jobs[0]["dns_sd_configs"][0]["names"] == ["predictor"], "must resolve the compose service"
    assert f"localhost:{port}/health" in " ".join(compose()["services"]["predictor"]["healthcheck"]["test"])
    [predictor] = containers("Deployment", "tickcast-predictor")
    assert [p["containerPort"] for p in predictor["ports"] if p["name"] == "http"] == [port]
    service = k8s_object("Service", "tickcast-predictor-metrics")
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(port, "http")]
    pod_annotations = k8s_object("Deployment", "tickcast-predictor")["spec"]["template"]["metadata"]["annotations"]
    assert pod_annotations["prometheus.io/port"] == str(port)
    assert pod_annotations["prometheus.io/path"] == "/metrics"


def test_topic_names_agree_everywhere() -> None:
    names = ("TICKCAST_TICKS_TOPIC", "TICKCAST_PREDICTIONS_TOPIC", "TICKCAST_DLQ_TOPIC")
    defaults = CommonSettings(bootstrap_servers="k:1")
    expected = dict(zip(names, (defaults.ticks_topic, defaults.predictions_topic, defaults.dlq_topic), strict=True))
    for source in ("topics", "producer", "predictor"):
        env = compose_env(source)
        assert {n: env.get(n, expected[n]) for n in names} == expected, f"compose {source} disagrees on topics"
    assert {n: configmap().get(n, expected[n]) for n in names} == expected
    assert trigger("kafka")["topic"] == expected["TICKCAST_TICKS_TOPIC"]


def test_alerts_and_dashboard_use_the_scrape_job_name() -> None:
    jobs = set(re.findall(r'job="([^"]+)"', ALERTS.read_text(encoding="utf-8") + " ".join(dashboard_exprs())))
    assert jobs == {PREDICTOR_JOB}, f"alerts/dashboard refer to jobs {jobs}, prometheus.yml scrapes {PREDICTOR_JOB}"


def test_grafana_datasource_is_the_one_the_dashboard_uses() -> None:
    [source] = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus" and source["url"].endswith(":9090")
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    uids = {target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]}
    assert uids == {source["uid"]}


# ---------------------------------------------------------------- Kubernetes and KEDA


@pytest.mark.parametrize(
    "manifest",
    [doc for _, doc in k8s_documents() if not doc["apiVersion"].startswith("keda.sh/")],
    ids=lambda doc: f"{doc['kind']}/{doc['metadata']['name']}",
)
def test_manifest_is_valid_kubernetes(manifest: dict[str, Any]) -> None:
    # strict: unknown fields (a misspelt livenessProbe) fail too. Schemas ship with the package: no cluster, no network.
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_manifests_are_namespace_agnostic_and_all_in_the_kustomization() -> None:
    for name, doc in k8s_documents():
        assert "namespace" not in doc["metadata"], f"{name}: the namespace is chosen at apply time (-n)"
    listed = set(load_yaml(K8S / "kustomization.yaml")["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_scaled_object_matches_the_predictor() -> None:
    # kubernetes-validate has no schema for KEDA's CRD, so check its shape and values here.
    obj = scaled_object()
    assert obj["apiVersion"] == "keda.sh/v1alpha1" and obj["kind"] == "ScaledObject"
    spec = obj["spec"]
    assert spec["scaleTargetRef"]["name"] == k8s_object("Deployment", "tickcast-predictor")["metadata"]["name"]
    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    partitions = int(configmap()["TICKCAST_PARTITIONS"])
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
    for t in spec["triggers"]:
        assert t["type"] in {"kafka", "cron"}
        assert all(isinstance(v, str) for v in t["metadata"].values()), f"KEDA {t['type']} metadata must be strings"

    kafka = trigger("kafka")
    group = configmap().get("TICKCAST_GROUP_ID", PredictorSettings.model_fields["group_id"].default)
    assert kafka["consumerGroup"] == group == PredictorSettings(bootstrap_servers="k:1").group_id
    assert kafka["bootstrapServers"] == configmap()["TICKCAST_BOOTSTRAP_SERVERS"]
    assert kafka["allowIdleConsumers"] == "false"
    assert int(kafka["lagThreshold"]) > 0
    assert kafka["offsetResetPolicy"] == "earliest", "KEDA must count lag the way the workers start reading"

    cron = trigger("cron")
    assert cron["timezone"] == "America/New_York"
    assert {"start", "end", "desiredReplicas"} <= set(cron)
    assert cron["start"] != cron["end"]
    assert all(len(cron[k].split()) == 5 for k in ("start", "end"))
    assert 1 <= int(cron["desiredReplicas"]) <= spec["maxReplicaCount"]


def test_predictor_deployment_is_probed_and_bounded() -> None:
    deployment = k8s_object("Deployment", "tickcast-predictor")
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count; re-applying must not reset it"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > PredictorSettings(bootstrap_servers="k:1").session_timeout_s
    [container] = pod["containers"]
    assert container["args"] == ["worker"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    worker_id = {e["name"]: e for e in container["env"]}["TICKCAST_WORKER_ID"]
    assert worker_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    sources = {ref.get("configMapRef", ref.get("secretRef", {}))["name"] for ref in container["envFrom"]}
    assert sources == {"tickcast-config", "tickcast-secrets"}


WORKLOADS = (("Deployment", "tickcast-predictor"), ("Deployment", "tickcast-producer"), ("Job", "tickcast-topics"))
#: Where the image keeps the only thing a service writes (Faust's scratch directory).
WRITABLE_DIR = "/tmp"


def dockerfile_env() -> dict[str, str]:
    """``ENV`` settings of the Dockerfile (``ENV A=1 \\ B=2`` spelling)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    found = re.findall(r"^ENV (.+)$", text, re.MULTILINE)
    return dict(pair.split("=", 1) for line in found for pair in line.split())


@pytest.mark.parametrize(("kind", "name"), WORKLOADS, ids=[name for _, name in WORKLOADS])
def test_every_container_runs_hardened(kind: str, name: str) -> None:
    pod = k8s_object(kind, name)["spec"]["template"]["spec"]
    pod_context = pod.get("securityContext", {})
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for container in pod["containers"]:
        context = {**pod_context, **container.get("securityContext", {})}
        where = f"{name}/{container['name']}"
        assert context.get("runAsNonRoot") is True, f"{where}: runAsNonRoot"
        assert isinstance(context.get("runAsUser"), int) and context["runAsUser"] > 0, f"{where}: numeric non-root uid"
        assert context.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
        assert context.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
        assert context.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drop ALL capabilities"
        assert not context.get("capabilities", {}).get("add"), f"{where}: adds capabilities"
        assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccomp RuntimeDefault"
        assert not context.get("privileged"), f"{where}: privileged"
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert WRITABLE_DIR in mounts and "emptyDir" in volumes[mounts[WRITABLE_DIR]], f"{where}: no writable /tmp"


def test_the_image_runs_as_a_numeric_user_and_writes_only_under_tmp() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]), f"USER must be a numeric non-root id: {users}"
    env = dockerfile_env()
    assert env["TICKCAST_DATA_DIR"].startswith(f"{WRITABLE_DIR}/")
    assert env["TICKCAST_WEB_HOST"] == "0.0.0.0", "in a container the HTTP server must listen on its interface"
    assert set(as_kwargs(env)) <= set(PredictorSettings.model_fields)


def test_compose_runs_tickcast_hardened() -> None:
    for name in TICKCAST_SERVICES:
        service = compose()["services"][name]
        assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", service["user"]), f"{name}: numeric non-root user"
        assert service["read_only"] is True, f"{name}: read-only root filesystem"
        assert WRITABLE_DIR in service["tmpfs"], f"{name}: no writable /tmp"
        assert service["cap_drop"] == ["ALL"] and "no-new-privileges:true" in service["security_opt"], name


def test_the_network_policy_fences_the_predictor() -> None:
    policy = k8s_object("NetworkPolicy", "tickcast-predictor")["spec"]
    pod_labels = k8s_object("Deployment", "tickcast-predictor")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    prometheus, gateways = policy["ingress"]
    for ingress in (prometheus, gateways):
        assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}], "only the HTTP (metrics/health) port"
    [source] = prometheus["from"]
    assert source["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    assert "podSelector" in source, "only Prometheus, not every pod of the monitoring namespace"
    [source] = gateways["from"]
    gateway_labels = k8s_object("Deployment", "tickcast-gateway")["spec"]["template"]["metadata"]["labels"]
    assert "namespaceSelector" not in source, "only this namespace's gateways"
    assert source["podSelector"]["matchLabels"].items() <= gateway_labels.items()
    allowed = {(port["port"], port.get("protocol", "TCP")) for rule in policy["egress"] for port in rule["ports"]}
    kafka_ports = {int(server.rsplit(":", 1)[1]) for server in configmap()["TICKCAST_BOOTSTRAP_SERVERS"].split(",")}
    registry_port = int(secret()["TICKCAST_SCHEMA_REGISTRY_URL"].rsplit(":", 1)[1])
    needed = {(port, "TCP") for port in kafka_ports | {registry_port}} | {(53, "UDP"), (53, "TCP")}
    assert needed <= allowed, f"egress misses {needed - allowed}"


def test_the_gateway_finds_every_worker_through_the_headless_service() -> None:
    service = k8s_object("Service", "tickcast-predictor-metrics")["spec"]
    assert service["clusterIP"] == "None", "headless: one DNS record per predictor pod"
    [gateway] = containers("Deployment", "tickcast-gateway")
    env = {item["name"]: item.get("value") for item in gateway["env"]}
    assert env["TICKCAST_GATEWAY_WORKER_STATS_DNS"] == f"tickcast-predictor-metrics:{service['ports'][0]['port']}"
    compose = load_yaml(COMPOSE)["services"]
    port = compose["predictor"]["environment"]["TICKCAST_WEB_PORT"]
    assert compose["gateway"]["environment"]["TICKCAST_GATEWAY_WORKER_STATS_DNS"] == f"predictor:{port}"


def test_pdb_and_service_select_the_predictor_pods() -> None:
    pod_labels = k8s_object("Deployment", "tickcast-predictor")["spec"]["template"]["metadata"]["labels"]
    pdb = k8s_object("PodDisruptionBudget", "tickcast-predictor")["spec"]["selector"]["matchLabels"]
    service = k8s_object("Service", "tickcast-predictor-metrics")["spec"]["selector"]
    for selector in (pdb, service):
        assert selector.items() <= pod_labels.items()
    producer_labels = k8s_object("Deployment", "tickcast-producer")["spec"]["template"]["metadata"]["labels"]
    assert not pdb.items() <= producer_labels.items(), "the PDB must not cover the producer"


# ---------------------------------------------------------------- alerts, dashboard and metrics


def test_the_eight_alerts_exist() -> None:
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


# ---------------------------------------------------------------- the gateway


def gateway_port() -> int:
    return int(compose_env("gateway")["TICKCAST_GATEWAY_PORT"])


def test_gateway_port_agrees_everywhere() -> None:
    port = gateway_port()
    GatewaySettings(**as_kwargs(compose_env("gateway")))
    assert f"localhost:{port}/health" in " ".join(compose()["services"]["gateway"]["healthcheck"]["test"])
    [job] = [j for j in load_yaml(PROMETHEUS_DIR / "prometheus.yml")["scrape_configs"] if j["job_name"] == GATEWAY_JOB]
    assert job["dns_sd_configs"][0]["names"] == ["gateway"] and job["dns_sd_configs"][0]["port"] == port
    [container] = containers("Deployment", "tickcast-gateway")
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["TICKCAST_GATEWAY_PORT"]) == port and env["TICKCAST_GATEWAY_HOST"] == "0.0.0.0"
    assert [p["containerPort"] for p in container["ports"] if p["name"] == "http"] == [port]
    assert "gateway_alerts.yml" in load_yaml(PROMETHEUS_DIR / "prometheus.yml")["rule_files"]


def test_gateway_deployment_is_probed_autoscaled_and_served() -> None:
    deployment = k8s_object("Deployment", "tickcast-gateway")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    [container] = containers("Deployment", "tickcast-gateway")
    assert container["args"] == ["gateway"]
    # Ready only once caught up (/health); alive as long as the server answers, whatever Kafka does.
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "http"}
    assert "memory" in container["resources"]["limits"]
    hpa = k8s_object("HorizontalPodAutoscaler", "tickcast-gateway")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "tickcast-gateway"}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert k8s_object("Service", "tickcast-gateway")["spec"]["selector"].items() <= pod_labels.items()
    predictor_labels = k8s_object("Deployment", "tickcast-predictor")["spec"]["template"]["metadata"]["labels"]
    assert not k8s_object("Service", "tickcast-gateway")["spec"]["selector"].items() <= predictor_labels.items()


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
