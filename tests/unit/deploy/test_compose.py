"""docker-compose.yml and the Dockerfile: one image runs the whole pipeline, hardened."""

from __future__ import annotations

import re

from tests.unit.deploy.files import (
    DOCKERFILE,
    GRAFANA_PROVISIONING,
    PROMETHEUS_DIR,
    TICKCAST_SERVICES,
    WRITABLE_DIR,
    as_kwargs,
    compose,
    dockerfile_env,
    load_yaml,
    web_port,
)
from tickcast.predictor.settings import PredictorSettings


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
    # The wheel built from /src in the first stage, installed without resolving anything (see test_lock.py).
    assert re.search(r"pip wheel .*/src$", text, re.MULTILINE)
    assert re.search(r"pip install --no-deps /wheel/\*\.whl$", text, re.MULTILINE)
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
