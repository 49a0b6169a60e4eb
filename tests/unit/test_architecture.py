"""The layout the README promises, checked on the source: who may import whom, no cycles, modules of sane size."""

from __future__ import annotations

import pytest

from tickcast.testing.imports import PACKAGE_DIR, find_cycle, import_graph, source_files, top_package

#: Services: each may import only ``tickcast.common`` and itself. Data flows between them over Kafka.
SERVICES = ("broker", "client", "gateway", "ops", "predictor", "producer", "subscriber")
#: Tools compose services for people and tests; no service imports them.
TOOLS = ("__main__", "cli", "demo", "evaluation", "testing")
MAX_MODULE_LINES = 400


def test_every_package_is_a_service_a_tool_or_common() -> None:
    # A new package must be placed on one side of the rule, or the rules below would not see it.
    packages = {top_package(name) for name in import_graph()} - {""}
    assert packages == {*SERVICES, *TOOLS, "common"}


def test_lazy_imports_inside_functions_are_in_the_graph() -> None:
    # The CLI imports services inside its commands; a parser that missed those would check nothing.
    assert "tickcast.predictor.app" in import_graph()["tickcast.cli.services"]


@pytest.mark.parametrize("service", [*SERVICES, "common"])
def test_a_service_imports_only_common_and_itself(service: str) -> None:
    allowed = {"common", service, ""}
    offending = sorted(
        f"{name} imports {target}"
        for name, targets in import_graph().items()
        if top_package(name) == service
        for target in targets
        if top_package(target) not in allowed
    )
    assert not offending, "a service may import only tickcast.common and itself:\n" + "\n".join(offending)


def test_no_service_imports_a_tool() -> None:
    offending = sorted(
        f"{name} imports {target}"
        for name, targets in import_graph().items()
        if top_package(name) not in TOOLS
        for target in targets
        if top_package(target) in TOOLS
    )
    assert not offending, "\n".join(offending)


def test_modules_import_each_other_without_cycles() -> None:
    # A package's __init__ naming its own modules (re-exports) is not a cycle between two concepts.
    graph = {
        name: {t for t in targets if not (name.startswith(t + ".") or t.startswith(name + "."))}
        for name, targets in import_graph().items()
    }
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_is_over_the_size_limit() -> None:
    # The bench and the tests are code we keep too: the same rule holds for them.
    root = PACKAGE_DIR.parent.parent
    others = [path for folder in ("bench", "tests") for path in (root / folder).rglob("*.py")]
    too_long = {
        str(path.relative_to(root)): lines
        for path in [*source_files().values(), *others]
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines (split them by concept): {too_long}"
