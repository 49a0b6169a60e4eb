"""The ops package's import rules: no cycle, and the autoscale decision stays pure (no Kafka, no supervisor)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import tickcast.ops

OPS = Path(tickcast.ops.__file__).parent
#: The decision and its inputs: unit-testable without a broker, a clock or a state directory.
PURE = {"errors", "schedule", "rates", "policy", "config"}


def module_name(path: Path) -> str:
    parts = ("tickcast", *path.relative_to(OPS.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file, lazy ones included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update({node.module, *(f"{node.module}.{alias.name}" for alias in node.names)})
    return names


MODULES = {module_name(path): path for path in OPS.rglob("*.py")}


def test_the_ops_modules_form_no_cycle() -> None:
    graph = {name: imported(path) & set(MODULES) - {name} for name, path in MODULES.items()}
    assert {"tickcast.ops.supervisor", "tickcast.ops.control", "tickcast.ops.autoscale.loop"} <= set(graph)
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle in tickcast.ops: {exc.args[1]}")


@pytest.mark.parametrize("name", sorted(PURE))
def test_the_autoscale_decision_needs_no_kafka_and_no_supervisor(name: str) -> None:
    names = imported(MODULES[f"tickcast.ops.autoscale.{name}"])
    outside = {n for n in names if n.startswith("tickcast.") and not n.startswith("tickcast.ops.autoscale.")}
    assert not outside and not any(n.startswith("confluent_kafka") for n in names), sorted(names)


def test_ops_does_not_import_the_cli() -> None:
    for name, path in MODULES.items():
        assert not any(n == "tickcast.cli" or n.startswith("tickcast.cli.") for n in imported(path)), name
