"""The secured-Kafka examples (deploy/kafka-security) agree with the settings and with the base manifests:
real setting names, credentials only from Secrets or the shell, the CA mounted where the setting points, and
each patched workload still a valid Kubernetes object."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from tickcast.common.security import KafkaClientSettings

ROOT = Path(__file__).resolve().parents[3]
OVERLAY = ROOT / "deploy" / "kafka-security"
K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.28"
SETTING_NAMES = {f"TICKCAST_{name.upper()}" for name in KafkaClientSettings.model_fields}
CREDENTIALS = ("TICKCAST_SASL_USERNAME", "TICKCAST_SASL_PASSWORD")


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def patches() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["resources"] == ["../k8s"]
    return [doc for patch in kustomization["patches"] for doc in documents(OVERLAY / patch["path"])]


def base(kind: str, name: str) -> dict[str, Any]:
    found = [
        d
        for p in sorted(K8S.glob("*.yaml"))
        if p.name != "kustomization.yaml"
        for d in documents(p)
        if (d["kind"], d["metadata"]["name"]) == (kind, name)
    ]
    assert len(found) == 1, f"the overlay patches {kind}/{name}, which deploy/k8s does not have exactly once"
    return found[0]


def workload_patches() -> list[dict[str, Any]]:
    return [doc for doc in patches() if doc["kind"] in ("Deployment", "Job")]


def test_the_overlay_configmap_holds_valid_kafka_settings(tmp_path: Path) -> None:
    [config] = [doc for doc in patches() if doc["kind"] == "ConfigMap"]
    data: dict[str, str] = config["data"]
    assert set(data) <= SETTING_NAMES, sorted(set(data) - SETTING_NAMES)
    assert not set(data) & set(CREDENTIALS), "credentials belong in Secrets"
    ca = tmp_path / "ca.pem"
    ca.write_text("stands in for the mounted CA")
    fields: dict[str, Any] = {k.removeprefix("TICKCAST_").lower(): v for k, v in data.items()}
    KafkaClientSettings(**{**fields, "ssl_ca_location": ca, "sasl_username": "u", "sasl_password": "p"})


def test_every_workload_gets_its_own_principal_from_a_secret_and_the_ca_where_the_setting_points() -> None:
    [config] = [doc for doc in patches() if doc["kind"] == "ConfigMap"]
    ca_dir = str(Path(config["data"]["TICKCAST_SSL_CA_LOCATION"]).parent)
    principals = set()
    for patch in workload_patches():
        spec = patch["spec"]["template"]["spec"]
        [container] = spec["containers"]
        env = {item["name"]: item for item in container["env"]}
        assert set(env) == set(CREDENTIALS), patch["metadata"]["name"]
        refs = {name: item["valueFrom"]["secretKeyRef"] for name, item in env.items()}
        assert all("value" not in item for item in env.values()), "no literal credentials"
        principals.add(refs["TICKCAST_SASL_USERNAME"]["name"])
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        [(volume, mount)] = mounts.items()
        assert mount["mountPath"] == ca_dir and mount["readOnly"] is True
        assert "secret" in volumes[volume]
    assert len(principals) == len(workload_patches()), "one Kafka principal per workload, for least-privilege ACLs"


def test_patched_workloads_are_valid_kubernetes() -> None:
    for patch in workload_patches():
        merged = copy.deepcopy(base(patch["kind"], patch["metadata"]["name"]))
        spec, extra = merged["spec"]["template"]["spec"], patch["spec"]["template"]["spec"]
        [added] = extra["containers"]
        [container] = [c for c in spec["containers"] if c["name"] == added["name"]]
        # What a strategic merge does with these lists (merged by name): append ours.
        container["env"] = [*container.get("env", []), *added["env"]]
        container["volumeMounts"] = [*container.get("volumeMounts", []), *added["volumeMounts"]]
        spec["volumes"] = [*spec.get("volumes", []), *extra["volumes"]]
        kubernetes_validate.validate(merged, K8S_VERSION, strict=True)


def test_compose_override_takes_credentials_from_the_shell_and_refuses_to_start_without_them() -> None:
    override = yaml.safe_load((OVERLAY / "docker-compose.kafka-security.yml").read_text(encoding="utf-8"))
    base_services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    principals = set()
    for name, service in override["services"].items():
        assert name in base_services, f"the override names {name!r}, which docker-compose.yml does not have"
        env: dict[str, str] = service["environment"]
        assert set(env) <= SETTING_NAMES, sorted(set(env) - SETTING_NAMES)
        for credential in CREDENTIALS:
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", env[credential]), f"{name}: {credential} must be required"
        principals.add(env["TICKCAST_SASL_USERNAME"])
        [volume] = service["volumes"]
        assert volume.endswith(f":{env['TICKCAST_SSL_CA_LOCATION']}:ro")
    assert len(principals) == len(override["services"]), "one Kafka principal per service"
