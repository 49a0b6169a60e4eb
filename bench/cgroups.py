"""CPU requests as Kubernetes applies them, for ``bench.gateway --cpu-requests``: cgroup v1 ``cpu.shares``.

The kubelet puts each container in a cgroup whose ``cpu.shares`` is its CPU request in millicores
x 1024 / 1000 (at least 2). When the node is busy, the scheduler splits CPU between cgroups by those
weights, whatever the number of threads inside; a process in the root cgroup instead weighs 1024 per
runnable thread (nice 0). This module puts bench processes in such groups, under ``/sys/fs/cgroup/cpu``
(cgroup v1, needs root), and moves them back to the root group afterwards. It is an explicit bench
option, reported in the results, never a default: everything else on the machine (the load generators,
other people's processes) stays in the root group.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

CPU_ROOT = Path("/sys/fs/cgroup/cpu")
K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"
#: Names a request may be given for, in ``--cpu-requests``.
ROLES = ("gateway", "baseline", "broker", "workers")


def shares_of(millicpu: int) -> int:
    """The ``cpu.shares`` the kubelet gives a container that requests ``millicpu`` (its MilliCPUToShares).

    >>> shares_of(1000), shares_of(500), shares_of(1)
    (1024, 512, 2)
    """
    return max(2, millicpu * 1024 // 1000)


def millicores(quantity: str) -> int:
    """A Kubernetes CPU quantity (``2``, ``0.5``, ``500m``) in millicores.

    >>> millicores("500m"), millicores("1"), millicores("0.25")
    (500, 1000, 250)
    """
    return int(quantity[:-1]) if quantity.endswith("m") else round(float(quantity) * 1000)


def deployed_requests(k8s: Path = K8S) -> dict[str, int]:
    """The CPU requests of the Kubernetes manifests: the gateway's (for both gateways of an A/B) and the
    predictor's (for each worker). The broker has none there (Kafka is not deployed by tickcast).

    >>> sorted(deployed_requests())
    ['baseline', 'gateway', 'workers']
    """
    import yaml  # type: ignore[import-untyped]  # a dev dependency (no stubs), as the bench is

    def request(manifest: str) -> int:
        for document in yaml.safe_load_all((k8s / manifest).read_text(encoding="utf-8")):
            if document and document.get("kind") in ("Deployment", "StatefulSet"):
                container = document["spec"]["template"]["spec"]["containers"][0]
                return millicores(str(container["resources"]["requests"]["cpu"]))
        raise ValueError(f"no Deployment or StatefulSet with a CPU request in {manifest}")

    gateway = request("gateway.yaml")
    return {"gateway": gateway, "baseline": gateway, "workers": request("predictor.yaml")}


def parse_requests(text: str) -> dict[str, int]:
    """``gateway=1000m,broker=1,workers=500m`` as millicores per role (Kubernetes' quantity forms ``N``, ``Nm``);
    ``deployed`` stands for the requests of the Kubernetes manifests (:func:`deployed_requests`).

    >>> parse_requests("gateway=1000m,broker=1,workers=500m")
    {'gateway': 1000, 'broker': 1000, 'workers': 500}
    >>> parse_requests("deployed,broker=1") == {**deployed_requests(), "broker": 1000}
    True
    >>> parse_requests("")
    {}
    >>> parse_requests("proxy=1")
    Traceback (most recent call last):
    ...
    ValueError: unknown role 'proxy' in --cpu-requests (one of gateway, baseline, broker, workers)
    """
    found: dict[str, int] = {}
    for pair in filter(None, text.split(",")):
        if pair == "deployed":
            found.update(deployed_requests())
            continue
        role, _, quantity = pair.partition("=")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} in --cpu-requests (one of {', '.join(ROLES)})")
        millicpu = millicores(quantity)
        if millicpu <= 0:
            raise ValueError(f"{role}: a CPU request must be positive, got {quantity!r}")
        found[role] = millicpu
    return found


@dataclass
class CpuGroups:
    """The cgroups of one bench run; :meth:`place` moves processes in, :meth:`close` moves them out and removes
    the groups. ``root`` is the cgroup v1 ``cpu`` hierarchy (a temporary folder in tests)."""

    tag: str
    root: Path = CPU_ROOT
    placed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self) -> None:
        """Raise :class:`PermissionError` / :class:`FileNotFoundError` now, not in the middle of a run."""
        if not (self.root / "cpu.shares").exists():
            raise FileNotFoundError(f"no cgroup v1 cpu hierarchy at {self.root}: --cpu-requests needs one")
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"cannot create cgroups under {self.root}: --cpu-requests needs root")

    def place(self, role: str, millicpu: int, pids: Iterable[int]) -> None:
        """Put ``pids`` and their children (every thread follows its process) in the group of ``role``."""
        group = self.root / f"tickcast-bench-{self.tag}-{role}"
        group.mkdir(exist_ok=True)
        shares = shares_of(millicpu)
        (group / "cpu.shares").write_text(str(shares))
        moved: list[int] = []
        for pid in pids:
            for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
                (group / "cgroup.procs").write_text(str(process.pid))
                moved.append(process.pid)
        self.placed[role] = {"millicpu": millicpu, "cpu_shares": shares, "pids": moved}

    def close(self) -> None:
        """Every process still alive back to the root group; the groups removed."""
        for role, entry in self.placed.items():
            group = self.root / f"tickcast-bench-{self.tag}-{role}"
            procs = group / "cgroup.procs"
            remaining = procs.read_text().split() if procs.exists() else []
            for pid in remaining:
                with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                    (self.root / "cgroup.procs").write_text(pid)
            try:
                group.rmdir()
            except OSError as exc:
                entry["not_removed"] = [str(exc)]
