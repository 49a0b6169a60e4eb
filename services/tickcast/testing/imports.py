"""tickcast's import graph, read from the source: which module names which, lazy imports included.

The layout rules (services import only ``tickcast.common`` and themselves, no cycles, the CLI's command
modules share only its common modules) are tests over this graph. It is read from the syntax tree, not by
importing, so an import inside a function counts as much as one at the top of a module: the old CLI cycle was
made of such lazy imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import tickcast

#: ``services/tickcast``.
PACKAGE_DIR = Path(tickcast.__file__).parent


def module_name(path: Path, root: Path = PACKAGE_DIR.parent) -> str:
    """The dotted name of a source file below ``root`` (a package's ``__init__`` is the package).

    >>> module_name(PACKAGE_DIR / "cli" / "__init__.py"), module_name(PACKAGE_DIR / "ops" / "lag.py")
    ('tickcast.cli', 'tickcast.ops.lag')
    """
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every dotted name an import statement in ``source`` names; ``from a import b`` gives ``a`` and ``a.b``.

    Relative imports are resolved against ``module``.

    >>> sorted(imported_names("def f():\\n    from tickcast.common import kafka\\nfrom . import x", "tickcast.ops.lag"))
    ['tickcast.common', 'tickcast.common.kafka', 'tickcast.ops', 'tickcast.ops.x']
    """
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def source_files(directory: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` below ``directory`` (the packaged contracts are not code)."""
    return {module_name(p): p for p in sorted(directory.rglob("*.py")) if "_schemas" not in p.parts}


def import_graph(directory: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """Module -> the tickcast modules it imports, for every module below ``directory``.

    >>> "tickcast.common.contracts.codec" in import_graph()["tickcast.common.contracts"]
    True
    """
    modules = source_files()
    graph: dict[str, set[str]] = {}
    for name, path in source_files(directory).items():
        named = imported_names(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
        graph[name] = {target for target in named if target in modules and target != name}
    return graph


def top_package(module: str) -> str:
    """The package right below ``tickcast`` that a module belongs to (``""`` for ``tickcast`` itself).

    >>> top_package("tickcast.ops.autoscale.policy"), top_package("tickcast")
    ('ops', '')
    """
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import cycle (a path that comes back to its start), or None.

    >>> find_cycle({"a": {"b"}, "b": {"a"}}) in (["a", "b", "a"], ["b", "a", "b"])
    True
    >>> find_cycle({"a": {"b"}, "b": set()}) is None
    True
    """
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle: list[str] = list(exc.args[1])
        return cycle
    return None
