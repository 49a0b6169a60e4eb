"""The CLI package's import rules: one module per command group, shared code below them, no cycle.

Imports inside functions count too: the old ``cli``/``cli_ops`` cycle was made of such lazy imports.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import tickcast

SERVICES = Path(tickcast.__file__).parent
CLI = SERVICES / "cli"
REPO = SERVICES.parent.parent
#: Modules every command module may use; they import no command module.
SHARED = {"tickcast.cli.common", "tickcast.cli.tick_files"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SERVICES.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (``from a import b`` counts as ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def cli_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in CLI.glob("*.py")}
    return {name: imported(path) & set(modules) - {name} for name, path in modules.items()}


def test_the_cli_modules_form_no_cycle() -> None:
    graph = cli_graph()
    assert {"tickcast.cli", "tickcast.cli.common", "tickcast.cli.ops"} <= set(graph)
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle in tickcast.cli: {exc.args[1]}")


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
        and any(name == "tickcast.cli" or name.startswith("tickcast.cli.") for name in imported(path))
    ]  # fmt: skip
    assert importers == [Path("services/tickcast/__main__.py")]


@pytest.mark.parametrize("module", sorted(module_name(path) for path in CLI.glob("*.py")))
def test_each_cli_module_imports_on_its_own(module: str) -> None:
    # A fresh interpreter per module: a cycle shows as an ImportError of a partly initialised module.
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
