"""The Kubernetes files rendered by kustomize itself (``kustomize build``), not by the tests' own merge.

The other deploy tests read the manifests and patches as YAML and merge them in Python; these check that the real
renderer agrees: every listed resource comes out, the image tag is applied, and the secured overlay's strategic
merge adds to each workload's containers instead of replacing the base's lists. kustomize is not a Debian package:
``.ci/install-kustomize`` installs a pinned release for CI (see :func:`tests.unit.deploy.files.kustomize_build`).
"""

from __future__ import annotations

from typing import Any

import yaml

from tests.unit.deploy.files import DEPLOY, K8S, kustomize_build

OVERLAY = DEPLOY / "kafka-security"


def key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def listed_documents() -> list[dict[str, Any]]:
    resources = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))["resources"]
    return [doc for name in resources for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def containers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["spec"]["template"]["spec"]["containers"]}


def names(items: list[dict[str, Any]] | None) -> set[str]:
    return {item["name"] for item in items or []}


def test_the_base_renders_every_listed_resource_with_the_released_image() -> None:
    out = kustomize_build(K8S)
    assert sorted(map(key, out)) == sorted(map(key, listed_documents()))
    images = {c["image"] for doc in out if doc["kind"] in ("Deployment", "Job") for c in containers(doc).values()}
    [release] = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))["images"]
    expected = f"{release['name']}:{release['newTag']}"
    assert images == {expected}, f"kustomization's images entry ({expected}) did not reach every workload: {images}"


def test_the_secured_overlay_adds_to_each_workload_without_dropping_what_the_base_had() -> None:
    base = {key(doc): doc for doc in kustomize_build(K8S)}
    secured = {key(doc): doc for doc in kustomize_build(OVERLAY)}
    assert set(base) <= set(secured), f"the overlay lost {set(base) - set(secured)}"
    changed = 0
    for workload, doc in secured.items():
        if workload[0] not in ("Deployment", "Job"):
            continue
        for name, container in containers(base[workload]).items():
            after = containers(doc)[name]
            # A strategic merge keys env and mounts by name; a list replaced wholesale would drop the base's.
            assert names(container.get("env")) <= names(after.get("env")), f"{workload} {name}: env dropped"
            assert names(container.get("volumeMounts")) <= names(after.get("volumeMounts")), f"{workload} {name}"
            assert container.get("envFrom", []) == after.get("envFrom", []), f"{workload} {name}: envFrom changed"
            changed += after != container
    assert changed, "the overlay changed no workload container"
    config = secured["ConfigMap", "tickcast-config"]["data"]
    assert config["TICKCAST_SECURITY_PROTOCOL"] == "SASL_SSL"
