"""The Kubernetes manifests: valid, namespace-agnostic, probed, bounded, hardened, autoscaled by KEDA/HPA."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import kubernetes_validate
import pytest

from tests.unit.deploy.files import (
    COMPOSE,
    K8S,
    K8S_VERSION,
    WORKLOADS,
    WRITABLE_DIR,
    configmap,
    containers,
    k8s_documents,
    k8s_object,
    load_yaml,
    scaled_object,
    secret,
    trigger,
)
from tickcast.predictor.settings import PredictorSettings


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


@pytest.mark.parametrize(("kind", "name"), WORKLOADS, ids=[name for _, name in WORKLOADS])
def test_every_container_runs_hardened(kind: str, name: str) -> None:
    pod = k8s_object(kind, name)["spec"]["template"]["spec"]
    pod_context = pod.get("securityContext", {})
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    # Init containers too: the README says every container runs non-root on a read-only root filesystem.
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
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


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a NetworkPolicy's ``podSelector`` picks pods with ``labels`` (matchLabels and ``In`` expressions).

    >>> selects({"matchExpressions": [{"key": "c", "operator": "In", "values": ["a", "b"]}]}, {"c": "b"})
    True
    """
    expressions = selector.get("matchExpressions", [])
    assert all(e["operator"] == "In" for e in expressions), "only In expressions are checked here"
    return selector.get("matchLabels", {}).items() <= labels.items() and all(
        labels.get(e["key"]) in e["values"] for e in expressions
    )


def egress_ports(policy: dict[str, Any], to_anywhere: bool = True) -> set[tuple[int | str, str]]:
    rules = [rule for rule in policy["egress"] if ("to" not in rule) == to_anywhere]
    return {(port["port"], port.get("protocol", "TCP")) for rule in rules for port in rule["ports"]}


FENCED = {
    ("Deployment", "tickcast-predictor"): "tickcast-predictor",
    ("Deployment", "tickcast-gateway"): "tickcast-gateway",
    ("Deployment", "tickcast-producer"): "tickcast-clients",
    ("Job", "tickcast-topics"): "tickcast-clients",
}


@pytest.mark.parametrize("workload", FENCED, ids=lambda workload: workload[1])
def test_each_workload_is_fenced_by_one_policy_that_lets_it_reach_kafka_the_registry_and_dns(
    workload: tuple[str, str],
) -> None:
    # Only the predictor had a policy: the gateway, the producer and the topics Job could reach and be reached
    # by anything in the cluster.
    labels = k8s_object(*workload)["spec"]["template"]["metadata"]["labels"]
    policies = [doc for _, doc in k8s_documents() if doc["kind"] == "NetworkPolicy"]
    selecting = [p["metadata"]["name"] for p in policies if selects(p["spec"]["podSelector"], labels)]
    assert selecting == [FENCED[workload]], f"{workload[1]} is selected by {selecting}"
    spec = k8s_object("NetworkPolicy", FENCED[workload])["spec"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    kafka_ports = {int(server.rsplit(":", 1)[1]) for server in configmap()["TICKCAST_BOOTSTRAP_SERVERS"].split(",")}
    registry_port = int({**configmap(), **secret()}["TICKCAST_SCHEMA_REGISTRY_URL"].rsplit(":", 1)[1])
    needed = {(port, "TCP") for port in kafka_ports | {registry_port}} | {(53, "UDP"), (53, "TCP")}
    assert needed <= egress_ports(spec), f"egress misses {needed - egress_ports(spec)}"


def test_the_producer_and_topics_job_take_no_connections() -> None:
    assert not k8s_object("NetworkPolicy", "tickcast-clients")["spec"].get("ingress")


def test_the_gateway_is_reached_on_its_http_port_only_and_reaches_the_predictors_stats() -> None:
    spec = k8s_object("NetworkPolicy", "tickcast-gateway")["spec"]
    [ingress] = spec["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    [to_predictors] = [rule for rule in spec["egress"] if "to" in rule]
    predictor_labels = k8s_object("Deployment", "tickcast-predictor")["spec"]["template"]["metadata"]["labels"]
    assert all(selects(peer["podSelector"], predictor_labels) for peer in to_predictors["to"])
    [predictor] = containers("Deployment", "tickcast-predictor")
    stats_port = {port["name"]: port["containerPort"] for port in predictor["ports"]}["http"]
    assert {(stats_port, "TCP")} == egress_ports(spec, to_anywhere=False)


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


def test_gateway_deployment_is_probed_autoscaled_and_served() -> None:
    deployment = k8s_object("Deployment", "tickcast-gateway")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    [container] = containers("Deployment", "tickcast-gateway")
    assert container["args"] == ["gateway"]
    # Ready only once caught up (/health); alive as long as the server answers, whatever Kafka does.
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "http"}
    # A failing startup probe kills the container like a failing liveness probe: on /health (503 until caught up)
    # a gateway started while Kafka is down, or needing over a minute to catch up, was restarted in a loop.
    assert container["startupProbe"]["httpGet"] == container["livenessProbe"]["httpGet"], "startup waits on Kafka"
    assert "memory" in container["resources"]["limits"]
    hpa = k8s_object("HorizontalPodAutoscaler", "tickcast-gateway")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "tickcast-gateway"}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert k8s_object("Service", "tickcast-gateway")["spec"]["selector"].items() <= pod_labels.items()
    predictor_labels = k8s_object("Deployment", "tickcast-predictor")["spec"]["template"]["metadata"]["labels"]
    assert not k8s_object("Service", "tickcast-gateway")["spec"]["selector"].items() <= predictor_labels.items()


def test_the_gateway_reads_its_clients_from_a_secret_volume_that_updates_in_place() -> None:
    pod = k8s_object("Deployment", "tickcast-gateway")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    path = PurePosixPath(env["TICKCAST_GATEWAY_CLIENTS_FILE"])
    [mount] = [m for m in container["volumeMounts"] if path.parent == PurePosixPath(m["mountPath"])]
    assert "subPath" not in mount, "a subPath mount never sees the Secret's updates: no reload without a restart"
    assert mount["readOnly"] is True
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    mounted = volume["secret"]
    assert mounted["optional"] is False, "a gateway without its clients file must not start open"
    assert {item["key"] for item in mounted.get("items", [{"key": path.name}])} == {path.name}
    # Made at deploy time (README), like the snapshot key: not a manifest in git.
    shipped = {doc["metadata"]["name"] for _, doc in k8s_documents() if doc["kind"] == "Secret"}
    assert mounted["secretName"] not in shipped


def test_every_pod_is_scraped_once() -> None:
    # The usual annotation-driven Prometheus configs (the prometheus-community chart's kubernetes-pods and
    # kubernetes-service-endpoints jobs) scrape an annotated pod, and every endpoint of an annotated Service: a
    # pod annotated both ways is scraped twice, and every sum() over workers (the dashboard's ticks in and
    # predictions out) counts it twice.
    annotated_pods = [
        (name, doc["spec"]["template"]["metadata"]["labels"])
        for _, doc in k8s_documents()
        if doc["kind"] in ("Deployment", "Job")
        for name in [doc["metadata"]["name"]]
        if doc["spec"]["template"]["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true"
    ]
    assert annotated_pods, "the workers' pods say where their metrics are"
    for _, service in (d for d in k8s_documents() if d[1]["kind"] == "Service"):
        if service["metadata"].get("annotations", {}).get("prometheus.io/scrape") != "true":
            continue
        selector = service["spec"]["selector"]
        twice = [name for name, labels in annotated_pods if selector.items() <= labels.items()]
        assert not twice, (
            f"Service {service['metadata']['name']} and the pods of {twice} are both annotated for scraping"
        )
