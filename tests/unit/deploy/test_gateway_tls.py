"""deploy/gateway-tls (a kustomize Component) turns the gateway's HTTPS on: the certificate from a TLS Secret made
outside git, mounted where the settings point (a directory, so renewals arrive), probes over HTTPS, the
Service on 443; and deploy/k8s-gateway-tls (deploy/k8s with it) renders to valid Kubernetes objects."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import kubernetes_validate
import yaml

from tests.unit.deploy.files import ROOT, k8s_documents, kustomize_build
from tickcast.gateway.settings import GatewaySettings

COMPONENT = ROOT / "deploy" / "gateway-tls"
OVERLAY = ROOT / "deploy" / "k8s-gateway-tls"
K8S_VERSION = "1.28"


def patch() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((COMPONENT / "gateway-tls.yaml").read_text(encoding="utf-8"))
    return loaded


def check_gateway(pod: dict[str, Any]) -> None:
    [container] = [c for c in pod["containers"] if c["name"] == "gateway"]
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    settings = GatewaySettings(**{k.removeprefix("TICKCAST_").lower(): v for k, v in env.items() if "_TLS_" in k})
    assert settings.gateway_scheme == "https"
    cert, key = (
        PurePosixPath(env["TICKCAST_GATEWAY_TLS_CERT_FILE"]),
        PurePosixPath(env["TICKCAST_GATEWAY_TLS_KEY_FILE"]),
    )
    assert (cert.name, key.name) == ("tls.crt", "tls.key"), "the keys of a kubernetes.io/tls Secret"
    [mount] = [m for m in container["volumeMounts"] if PurePosixPath(m["mountPath"]) == cert.parent == key.parent]
    assert "subPath" not in mount, "a subPath mount never sees a renewed certificate"
    assert mount["readOnly"] is True
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert secret["optional"] is False and "items" not in secret
    assert secret["defaultMode"] & 0o007 == 0, "the private key readable by every uid in the pod"
    assert secret["defaultMode"] & 0o040 and pod["securityContext"]["fsGroup"] == 10001, "the gateway cannot read it"
    shipped = {doc["metadata"]["name"] for _, doc in k8s_documents() if doc["kind"] == "Secret"}
    assert secret["secretName"] not in shipped, "a private key in git"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS", f"{probe} over plain HTTP fails on an HTTPS port"
    # The startup probe kills like the liveness probe, so it must not wait for Kafka (/health is 503 until caught up).
    assert container["startupProbe"]["httpGet"]["path"] == container["livenessProbe"]["httpGet"]["path"] == "/metrics"


def test_the_component_mounts_the_certificate_where_the_settings_point_and_probes_over_https() -> None:
    document = patch()
    assert (document["kind"], document["metadata"]["name"]) == ("Deployment", "tickcast-gateway")
    check_gateway(document["spec"]["template"]["spec"])
    assert document["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scheme"] == "https"


def test_deploy_k8s_with_the_component_renders_to_valid_objects() -> None:
    documents = {(d["kind"], d["metadata"]["name"]): d for d in kustomize_build(OVERLAY)}
    deployment = documents[("Deployment", "tickcast-gateway")]
    service = documents[("Service", "tickcast-gateway")]
    for document in (deployment, service):
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    pod = deployment["spec"]["template"]["spec"]
    check_gateway(pod)
    [container] = pod["containers"]
    assert "TICKCAST_GATEWAY_CLIENTS_FILE" in {item["name"] for item in container["env"]}, "the base's env was lost"
    assert {v["name"] for v in pod["volumes"]} == {"gateway-clients", "gateway-tls", "tmp"}
    assert service["spec"]["ports"] == [
        {"name": "https", "port": 443, "targetPort": "http", "protocol": "TCP", "appProtocol": "https"}
    ]
