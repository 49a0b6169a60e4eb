"""The CLI package's import rules: one module per command group, shared code below them, no cycle.

Imports inside functions count too: the old ``cli``/``cli_ops`` cycle was made of such lazy imports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tickcast
from tickcast.testing.imports import find_cycle, import_graph, imported_names, module_name

SERVICES = Path(tickcast.__file__).parent
CLI = SERVICES / "cli"
REPO = SERVICES.parent.parent
#: Modules every command module may use; they import no command module.
SHARED = {"tickcast.cli.common", "tickcast.cli.tick_files"}


def cli_graph() -> dict[str, set[str]]:
    """Imports among the CLI's own modules."""
    graph = import_graph(CLI)
    return {name: targets & set(graph) for name, targets in graph.items()}


def test_the_cli_modules_form_no_cycle() -> None:
    graph = cli_graph()
    assert {"tickcast.cli", "tickcast.cli.common", "tickcast.cli.ops"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle in tickcast.cli: {cycle}"


def test_command_modules_import_only_the_shared_modules() -> None:
    graph = cli_graph()
    commands = set(graph) - SHARED - {"tickcast.cli"}
    for name in sorted(commands):
        assert graph[name] <= SHARED, f"{name} imports {sorted(graph[name] - SHARED)}"
    for name in sorted(SHARED):
        assert not graph[name] & (commands | {"tickcast.cli"}), f"{name} imports a command module or the app"
    assert graph["tickcast.cli"] == commands, "the app does not register every command module"


def test_only_the_entry_points_import_the_cli() -> None:
    importers = [
        path.relative_to(REPO)
        for folder in (SERVICES, REPO / "tests", REPO / "bench")
        for path in folder.rglob("*.py")
        if CLI not in path.parents and path.parent != Path(__file__).parent
        and any(
            name == "tickcast.cli" or name.startswith("tickcast.cli.")
            for name in imported_names(path.read_text(), module_name(path, path.parent))
        )
    ]  # fmt: skip
    assert importers == [Path("services/tickcast/__main__.py")]


@pytest.mark.parametrize("module", sorted(import_graph(CLI)))
def test_each_cli_module_imports_on_its_own(module: str) -> None:
    # A fresh interpreter per module: a cycle shows as an ImportError of a partly initialised module.
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
