"""What README.md cites exists: repository paths, ``tickcast.*`` modules and names, tests, make targets."""

from __future__ import annotations

import importlib
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
#: Folders at the top of the repository: a path starting with one is read from the root, nothing else.
TOP = ("services/", "tests/", "bench/", "deploy/", "schemas/", ".ci/")
#: Made at run time, or outside the repository.
NOT_IN_GIT = (".venv/", ".tickcast/", "../")
DOTTED = re.compile(r"\btickcast(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
#: Dotted names in the README that are not Python: header names of dead letters and the Avro namespace.
NOT_PYTHON = ("tickcast.v1.", "tickcast.source.", "tickcast.original.")
NOT_MODULES = frozenset(
    {"tickcast.json", "tickcast.message", "tickcast.reason", "tickcast.rejected_at", "tickcast.worker"}
    | {"tickcast.payload_dropped", "tickcast.replayed_from"}
)
TEST_NAME = re.compile(r"`(test_[a-z0-9_]+)(?:\.py)?`")
#: ``make`` in a code span or at the start of a line of a code block; "make lint typecheck" names two targets.
MAKE = re.compile(r"(?:`|^)make ([a-z][a-z-]*(?: [a-z][a-z-]*)*)", re.MULTILINE)


@cache
def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


@cache
def tracked() -> frozenset[str]:
    """Every file git tracks, and every folder holding one (with a trailing slash)."""
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = listed.splitlines()
    folders = {f"{parent}/" for f in files for parent in Path(f).parents if str(parent) != "."}
    return frozenset(files) | folders


#: A label or annotation key's DNS-name prefix, as in ``prometheus.io/port``.
KUBERNETES_KEY_PREFIX = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+/")


def looks_like_path(token: str) -> bool:
    """A backticked token that names a file or folder of the repository.

    >>> [looks_like_path(t) for t in ("deploy/k8s/gateway.yaml", "selection/rule.py", "/health", "a b/c")]
    [True, True, False, False]
    >>> [looks_like_path(t) for t in ("tests/unit/<package>/", "1e4 · ln(p_label / p_t)", "default.toml")]
    [False, False, True]
    >>> [looks_like_path(t) for t in ("prometheus.io/port", "app.kubernetes.io/component", ".ci/run")]
    [False, False, True]
    """
    if " " in token or token.startswith(("/", "$", "-", *NOT_IN_GIT)) or any(c in token for c in "<>{}*=:?"):
        return False
    if KUBERNETES_KEY_PREFIX.match(token):
        return False  # a Kubernetes label or annotation key (prefix/name), not a file
    return "/" in token or re.fullmatch(r"[\w.-]+\.(py|ya?ml|json|toml|md|avsc|png|csv)", token) is not None


def exists(path: str) -> bool:
    """Rooted paths must exist as written; a path written relative to its package may sit in any folder."""
    if path.startswith(TOP) or (ROOT / path).exists():
        return (ROOT / path).exists()
    return any(f == path or f.endswith("/" + path) for f in tracked())


def test_every_path_the_readme_cites_exists() -> None:
    cited = {t for t in CODE.findall(readme()) if looks_like_path(t)}
    cited |= {link for link in LINK.findall(readme()) if not link.startswith(("http://", "https://"))}
    missing = sorted(p for p in cited if not exists(p))
    assert not missing, f"README.md cites paths that are not in the repository: {missing}"


def resolves(name: str) -> bool:
    """A dotted name is a module, or a module's attribute (a class, a function, a class's attribute)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


def test_every_tickcast_module_the_readme_names_exists() -> None:
    names = {n for n in DOTTED.findall(readme()) if not n.startswith(NOT_PYTHON) and n not in NOT_MODULES}
    assert names, "the README names no tickcast module: the pattern is broken"
    missing = sorted(n for n in names if not resolves(n))
    assert not missing, f"README.md names modules or attributes that do not exist: {missing}"


def test_every_test_module_the_readme_names_exists() -> None:
    modules = {p.stem for p in (ROOT / "tests").rglob("test_*.py")}
    named = set(TEST_NAME.findall(readme()))
    assert named, "the README names no test module: the pattern is broken"
    missing = sorted(n for n in named if n not in modules)
    assert not missing, f"README.md names test modules that do not exist: {missing}"


@pytest.mark.parametrize("command", sorted(set(MAKE.findall(readme()))))
def test_every_make_target_the_readme_names_exists(command: str) -> None:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", text, flags=re.MULTILINE))
    missing = [word for word in command.split() if word not in targets]
    assert not missing, f"README.md says `make {command}`; the Makefile has no target {missing}"


def layout_rows() -> list[tuple[str, str]]:
    """(package, what it holds) of the Development section's layout table."""
    table = readme()[readme().index("| package | kind | what it holds |") :].split("\n\n")[0]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    return [(c[0].strip("`"), c[2]) for c in cells]


def defined_in(package: Path, name: str) -> bool:
    """``name`` is a module or folder of ``package``, or a function, class or constant defined in one of its modules."""
    if any(p.stem == name for p in package.rglob("*") if "__pycache__" not in p.parts):
        return True
    definition = re.compile(rf"^(?:def|class|async def) {name}\b|^{name}\b.*=", re.MULTILINE)
    return any(definition.search(p.read_text(encoding="utf-8")) for p in package.rglob("*.py"))


def test_every_module_the_layout_table_names_is_in_its_package() -> None:
    rows = layout_rows()
    assert len(rows) >= 10, "the layout table was not found"
    missing = sorted(
        f"{package}: {name}"
        for package, holds in rows
        for name in (t.rstrip("/") for t in CODE.findall(holds))
        if re.fullmatch(r"[a-z_]+", name)
        and name != "tickcast"
        and not defined_in(ROOT / "services" / "tickcast" / package, name)
    )
    assert not missing, f"README's layout table names modules its packages do not have: {missing}"


#: Where the worker's and the gateway's metric names are declared.
METRIC_SOURCES = ("predictor/metrics.py", "predictor/horizon_metrics.py", "gateway/metrics.py")


def exported_metrics() -> dict[str, bool]:
    """Every metric name the worker and the gateway export, and whether it is a counter (read with ``_total``)."""
    names: dict[str, bool] = {}
    for source in METRIC_SOURCES:
        text = (ROOT / "services" / "tickcast" / source).read_text(encoding="utf-8")
        for match in re.finditer(r'(Counter|Gauge|Histogram|MetricSpec)\(\s*"(tickcast_[a-z0-9_]+)",\s*"(\w+)?', text):
            kind, name, spec_kind = match.groups()
            names[name] = kind == "Counter" or spec_kind == "counter"
        for match in re.finditer(r'^\s*"(tickcast_[a-z0-9_]+)",\s*\n?\s*"(counter|gauge|histogram)"', text, re.M):
            names[match[1]] = match[2] == "counter"
    return names


def test_every_metric_the_services_export_is_in_the_readme() -> None:
    metrics = exported_metrics()
    assert len(metrics) >= 30, f"the metric declarations were not found: {sorted(metrics)}"
    words = set(re.findall(r"`([a-z_:]+)", readme()))
    missing = []
    for name, counter in metrics.items():
        written = f"{name}_total" if counter else name
        family = "_".join(name.split("_")[:2])  # tickcast_gateway_clients_dropped -> tickcast_gateway
        if written not in words and written.removeprefix(family) not in words:
            missing.append(written)
    assert not missing, f"README.md does not name these exported metrics: {sorted(missing)}"


def test_every_dead_letter_reason_code_is_in_the_readme() -> None:
    from tickcast.common.errors import Reason

    table = section(readme(), "## Validation and dead letters")
    missing = sorted(reason.value for reason in Reason if f"`{reason.value}`" not in table)
    assert not missing, f"README's validation table lacks these dead-letter reason codes: {missing}"


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    return text[start : text.find("\n## ", start + 1)]
