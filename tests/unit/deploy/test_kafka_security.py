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

from tests.unit.deploy.files import kustomize_build
from tickcast.common.security import KafkaClientSettings

ROOT = Path(__file__).resolve().parents[3]
OVERLAY = ROOT / "deploy" / "kafka-security"
K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.28"
SETTING_NAMES = {f"TICKCAST_{name.upper()}" for name in KafkaClientSettings.model_fields}
CREDENTIALS = ("TICKCAST_SASL_USERNAME", "TICKCAST_SASL_PASSWORD")


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


#: Services of docker-compose.yml that never reach Kafka, and why.
COMPOSE_WITHOUT_KAFKA = {"schemas": "`schema register` talks to the Schema Registry only"}


def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text(encoding="utf-8"))
    assert loaded["resources"] == ["../k8s", "keda-auth.yaml"]
    return loaded


def patches() -> list[dict[str, Any]]:
    """The strategic-merge patches (those without a target; the targeted one is a JSON patch)."""
    return [
        doc
        for patch in kustomization()["patches"]
        if "target" not in patch
        for doc in documents(OVERLAY / patch["path"])
    ]


def base_documents() -> list[dict[str, Any]]:
    return [d for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml" for d in documents(p)]


def base(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in base_documents() if (d["kind"], d["metadata"]["name"]) == (kind, name)]
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


def test_every_base_workload_that_reaches_kafka_is_patched() -> None:
    # The gateway was left out: on a secured cluster it had the ConfigMap's SASL_SSL but no principal or CA.
    reaching = {
        d["metadata"]["name"]
        for d in base_documents()
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
        if any(ref.get("configMapRef", {}).get("name") == "tickcast-config" for ref in c.get("envFrom", []))
    }
    assert reaching and reaching == {patch["metadata"]["name"] for patch in workload_patches()}


def json_patched(document: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """``document`` with the ``add``/``replace`` operations of a JSON patch applied (all the overlay uses)."""
    patched = copy.deepcopy(document)
    for operation in operations:
        *parents, last = operation["path"].strip("/").split("/")
        node: Any = patched
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert operation["op"] in ("add", "replace"), operation
        if operation["op"] == "replace":
            assert last in node, f"replace of a missing {operation['path']}"
        node[last] = operation["value"]
    return patched


def test_the_keda_trigger_reads_lag_from_the_secured_cluster_with_its_own_principal() -> None:
    [config] = [doc for doc in patches() if doc["kind"] == "ConfigMap"]
    data = config["data"]
    [json_patch] = [patch for patch in kustomization()["patches"] if "target" in patch]
    target = json_patch["target"]
    scaled = json_patched(
        base(target["kind"], target["name"]), yaml.safe_load((OVERLAY / json_patch["path"]).read_text())
    )
    kafka = [trigger for trigger in scaled["spec"]["triggers"] if trigger["type"] == "kafka"]
    assert [t["type"] for t in scaled["spec"]["triggers"]] == ["kafka", "cron"], "the patch dropped a trigger"
    [trigger] = kafka
    assert trigger["metadata"]["bootstrapServers"] == data["TICKCAST_BOOTSTRAP_SERVERS"]
    # KEDA spells SCRAM-SHA-512 as scram_sha512.
    assert trigger["metadata"]["sasl"] == data["TICKCAST_SASL_MECHANISM"].lower().replace("-", "_", 1).replace("-", "")
    assert trigger["metadata"]["tls"] == "enable" and data["TICKCAST_SECURITY_PROTOCOL"] == "SASL_SSL"
    [auth] = documents(OVERLAY / "keda-auth.yaml")
    assert auth["kind"] == "TriggerAuthentication" and trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    refs = {ref["parameter"]: ref for ref in auth["spec"]["secretTargetRef"]}
    assert set(refs) == {"username", "password", "ca"}
    assert refs["ca"]["name"] == "tickcast-kafka-ca"
    assert refs["ca"]["key"] == Path(data["TICKCAST_SSL_CA_LOCATION"]).name
    workload_principals = {
        item["valueFrom"]["secretKeyRef"]["name"]
        for patch in workload_patches()
        for item in patch["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert refs["username"]["name"] == refs["password"]["name"] not in workload_principals, "KEDA's own principal"


def test_every_compose_service_that_reaches_kafka_is_in_the_override() -> None:
    override = yaml.safe_load((OVERLAY / "docker-compose.kafka-security.yml").read_text(encoding="utf-8"))
    base_services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    reaching = {
        name
        for name, service in base_services.items()
        if "TICKCAST_BOOTSTRAP_SERVERS" in service.get("environment", {})
    }
    assert reaching - set(COMPOSE_WITHOUT_KAFKA) == set(override["services"])


def test_every_container_that_reads_the_secured_configmap_has_a_principal_and_the_ca() -> None:
    # Init containers too: the topics Job's `schema register` reads the same ConfigMap, so with SASL_SSL there its
    # settings refuse to load without credentials and without the CA file where TICKCAST_SSL_CA_LOCATION points.
    rendered = kustomize_build(OVERLAY)
    [config] = [d for d in rendered if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "tickcast-config"]
    assert config["data"]["TICKCAST_SECURITY_PROTOCOL"] == "SASL_SSL"
    ca_dir = str(Path(config["data"]["TICKCAST_SSL_CA_LOCATION"]).parent)
    checked = []
    for workload in (d for d in rendered if d["kind"] in ("Deployment", "Job")):
        pod = workload["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            refs = [ref.get("configMapRef", {}).get("name") for ref in container.get("envFrom", [])]
            if "tickcast-config" not in refs:
                continue
            where = f"{workload['metadata']['name']}/{container['name']}"
            env = {item["name"] for item in container.get("env", [])}
            assert set(CREDENTIALS) <= env, f"{where}: SASL_SSL from the ConfigMap but no SASL credentials"
            mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
            assert ca_dir in mounts, f"{where}: TICKCAST_SSL_CA_LOCATION points into {ca_dir}, which is not mounted"
            checked.append(where)
    assert "tickcast-topics/schemas" in checked, checked
