"""The ops package's import rules: no cycle, and the autoscale decision stays pure (no Kafka, no supervisor)."""

from __future__ import annotations

from pathlib import Path

import pytest

import tickcast.ops
from tickcast.testing.imports import find_cycle, import_graph, imported_names, source_files

OPS = Path(tickcast.ops.__file__).parent
#: The decision and its inputs: unit-testable without a broker, a clock or a state directory.
PURE = {"errors", "schedule", "rates", "policy", "config"}


MODULES = source_files(OPS)
GRAPH = import_graph(OPS)


def imported(name: str) -> set[str]:
    path = MODULES[name]
    return imported_names(path.read_text(), name, path.name == "__init__.py")


def test_the_ops_modules_form_no_cycle() -> None:
    assert {"tickcast.ops.supervisor", "tickcast.ops.control", "tickcast.ops.autoscale.loop"} <= set(GRAPH)
    cycle = find_cycle(GRAPH)
    assert cycle is None, f"import cycle in tickcast.ops: {cycle}"


@pytest.mark.parametrize("name", sorted(PURE))
def test_the_autoscale_decision_needs_no_kafka_and_no_supervisor(name: str) -> None:
    names = imported(f"tickcast.ops.autoscale.{name}")
    outside = {n for n in names if n.startswith("tickcast.") and not n.startswith("tickcast.ops.autoscale.")}
    assert not outside and not any(n.startswith("confluent_kafka") for n in names), sorted(names)


def test_ops_does_not_import_the_cli() -> None:
    for name in MODULES:
        assert not any(n == "tickcast.cli" or n.startswith("tickcast.cli.") for n in imported(name)), name
