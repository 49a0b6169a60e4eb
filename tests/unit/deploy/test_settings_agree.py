"""Every setting a deploy file writes is a real one, valid, and agrees with the other files."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.unit.deploy.files import (
    COMPOSE,
    COMPOSE_VARIABLE,
    DOCKERFILE,
    GATEWAY_JOB,
    K8S,
    PREDICTOR_JOB,
    PROMETHEUS_DIR,
    ROOT,
    WORKLOADS,
    as_kwargs,
    compose,
    compose_env,
    configmap,
    containers,
    env_sources,
    gateway_port,
    interpolated,
    k8s_documents,
    k8s_object,
    load_yaml,
    secret,
    setting_env_names,
    trigger,
    web_port,
)
from tickcast.common.settings import CommonSettings
from tickcast.gateway.settings import GatewaySettings
from tickcast.predictor.settings import PredictorSettings
from tickcast.predictor.snapshot_keys import PLACEHOLDER_KEYS
from tickcast.producer.settings import ProducerSettings


@pytest.mark.parametrize("source", sorted(env_sources()))
def test_every_tickcast_variable_is_a_real_setting(source: str) -> None:
    env = env_sources()[source]
    unknown = sorted(k for k in env if k.startswith("TICKCAST_") and k not in setting_env_names())
    assert not unknown, f"{source} sets variables no tickcast settings class reads: {unknown}"


def test_configmap_and_secret_hold_only_tickcast_settings() -> None:
    for name, data in (("ConfigMap", configmap()), ("Secret", secret())):
        stray = sorted(k for k in data if not k.startswith("TICKCAST_"))
        assert not stray, f"{name} carries keys that are not TICKCAST_* settings: {stray}"
    # kubectl apply sends a manifest's stringData every time, so a value in the Secret in git replaced, at every
    # `kubectl apply -k` (an image upgrade, say), the real registry URL set out of band, as secret.yaml asks.
    assert not secret(), "the Secret in git must hold no value: it would overwrite the one set out of band"
    # The default URL (no credentials) is in the ConfigMap; a URL with user:password goes in the Secret, which
    # every pod reads after the ConfigMap (envFrom: the last source wins).
    assert "@" not in urlsplit(configmap()["TICKCAST_SCHEMA_REGISTRY_URL"]).netloc, "no credentials in a ConfigMap"
    for kind, name in WORKLOADS:
        pod = k8s_object(kind, name)["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            sources = [next(iter(ref)) for ref in container.get("envFrom", [])]
            if "secretRef" in sources:
                assert sources == ["configMapRef", "secretRef"], f"{name}/{container['name']}: the Secret must win"


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
