"""What README.md says outside its tables agrees with the code: setting names and the defaults given beside them,
metric and alert names, and the commands and paths of its shell lines and code blocks."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from pydantic.aliases import AliasChoices

from tests.unit.cli.test_readme_commands import check_commands
from tests.unit.deploy.test_readme_configuration import PREFIX, SERVICES
from tests.unit.test_readme import CODE, ROOT, TOP, readme
from tickcast.testing.data import DataSettings

#: A setting named in prose with its default beside it: "`TICKCAST_GAP_S` (300 s: ...)", "`TICKCAST_PARTITIONS`,
#: default 8", "`TICKCAST_SNAPSHOT_EVERY_TICKS` ticks (1000)", "`TICKCAST_FETCH_MAX_WAIT_MS` (default 20 ms: ...)".
DEFAULT_BESIDE = re.compile(
    r"`(?P<name>TICKCAST_[A-Z0-9_]+)`(?:\s+[a-z]+)?(?:\s+\((?:default\s)?|,\s+(?:default\s)?)"
    r"(?P<number>[0-9][0-9,]*(?:\.[0-9]+)?)(?:\s?(?P<unit>ms|s|min)\b)?(?=[;:),])"
)
VARIABLE = re.compile(r"\bTICKCAST_[A-Z0-9_]+\*?")
#: ``${NAME:?...}`` or ``${NAME:-...}`` in a compose file: a variable of the shell that runs compose, not a setting.
COMPOSE_VARIABLE = re.compile(r"\$\{(TICKCAST_[A-Z0-9_]+)")
FENCED = re.compile(r"^```[a-z]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
SECONDS_PER = {"ms": 0.001, "s": 1.0, "min": 60.0}


def env_names(cls: type[Any]) -> set[str]:
    """The environment variables a settings class reads: ``TICKCAST_<FIELD>``, or a field's own aliases."""
    names = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice for choice in alias.choices if isinstance(choice, str) and choice.startswith(PREFIX)}
        else:
            names.add(f"{PREFIX}{field_name.upper()}")
    return names


@cache
def settings() -> frozenset[str]:
    return frozenset(name for cls in (*SERVICES.values(), DataSettings) for name in env_names(cls))


@cache
def compose_variables() -> frozenset[str]:
    files = [ROOT / "docker-compose.yml", *(ROOT / "deploy").rglob("docker-compose*.yml")]
    return frozenset(name for path in files for name in COMPOSE_VARIABLE.findall(path.read_text(encoding="utf-8")))


def test_every_tickcast_variable_the_readme_names_is_read_somewhere() -> None:
    named = set(VARIABLE.findall(readme()))
    assert len(named) > 50, "the README names no TICKCAST_ variable: the pattern is broken"
    unknown = sorted(
        name
        for name in named
        if not (
            any(s.startswith(name[:-1]) for s in settings())
            if name.endswith("*")
            else name in settings() or name in compose_variables()
        )
    )
    assert not unknown, f"README.md names variables that no settings class nor compose file reads: {unknown}"


def code_default(name: str) -> Any:
    field_name = name.removeprefix(PREFIX).lower()
    fields = [cls.model_fields[field_name] for cls in SERVICES.values() if field_name in cls.model_fields]
    assert fields, f"README.md gives a default for {name}, which no settings class has"
    return fields[0].default


def in_the_fields_unit(number: str, unit: str | None, name: str) -> float:
    """The README's number in the unit its setting's name ends with (``5 min`` of a ``_MS`` setting is 300000)."""
    value = float(number.replace(",", ""))
    if unit is None:
        return value
    field_unit = "ms" if name.endswith("_MS") else "s" if name.endswith("_S") else None
    assert field_unit is not None, f"README.md gives {name} in {unit}, a setting without a unit in its name"
    return value * SECONDS_PER[unit] / SECONDS_PER[field_unit]


def test_the_defaults_the_readme_gives_in_prose_are_the_codes() -> None:
    claims = list(DEFAULT_BESIDE.finditer(readme()))
    assert len(claims) >= 10, "the README gives no default beside a setting: the pattern is broken"
    wrong = sorted(
        f"{claim.group(0)!r}: code default {code_default(claim['name'])!r}"
        for claim in claims
        if in_the_fields_unit(claim["number"], claim["unit"], claim["name"]) != float(code_default(claim["name"]))
    )
    assert not wrong, f"README.md gives defaults the code does not have: {wrong}"


def metric_names_in_source() -> set[str]:
    """Every ``tickcast_*`` name the services' sources or the Prometheus recording rules spell out."""
    sources = [*(ROOT / "services" / "tickcast").rglob("*.py"), *(ROOT / "deploy" / "prometheus").glob("*.yml")]
    return {name for path in sources for name in re.findall(r"tickcast[_:][a-z0-9_:]+", path.read_text("utf-8"))}


def test_every_metric_the_readme_names_is_declared() -> None:
    named = {name for span in CODE.findall(readme()) for name in re.findall(r"^tickcast_[a-z0-9_]+", span)}
    assert len(named) > 30, "the README names no metric: the pattern is broken"
    declared = metric_names_in_source()
    missing = sorted(name for name in named if not {name, re.sub(r"_(total|bucket|sum|count)$", "", name)} & declared)
    assert not missing, f"README.md names metrics no service declares: {missing}"


def test_every_alert_the_readme_names_is_defined() -> None:
    import tickcast.client

    rules = (ROOT / "deploy" / "prometheus").glob("*.yml")
    defined = {name for path in rules for name in re.findall(r"alert:\s*(\w+)", path.read_text(encoding="utf-8"))}
    named = {name for name in re.findall(r"\bTickcast[A-Z]\w+", readme()) if not hasattr(tickcast.client, name)}
    assert named, "the README names no alert: the pattern is broken"
    assert not named - defined, f"README.md names alerts deploy/prometheus does not define: {sorted(named - defined)}"


def shell_lines() -> list[str]:
    """The code blocks' lines, and the code spans that hold a command (a space in them)."""
    blocks = [line for block in FENCED.findall(readme()) for line in block.splitlines()]
    return blocks + [span for span in CODE.findall(readme()) if " " in span]


def test_every_tickcast_command_in_the_readme_code_blocks_exists() -> None:
    commands = [
        f"`{match[1].strip()}`"
        for block in FENCED.findall(readme())
        for line in block.splitlines()
        if (match := re.match(r"^\s*(?:\$ )?(tickcast [^#]*)", line))
    ]
    assert commands, "the README's code blocks show no tickcast command: the pattern is broken"
    wrong, _ = check_commands(commands)
    assert not wrong, f"README.md's code blocks show commands or options the CLI does not have: {wrong}"


def test_every_repository_path_in_the_readme_commands_exists() -> None:
    # `kubectl apply -k deploy/k8s`, `docker compose -f deploy/...yml`: one path among other words.
    words = {word.strip("(),;'\"").split("=", 1)[-1] for line in shell_lines() for word in line.split()}
    cited = {word for word in words if word.startswith(TOP) and not any(c in word for c in "<>{}*$")}
    assert cited, "the README's commands cite no repository path: the pattern is broken"
    missing = sorted(path for path in cited if not (ROOT / Path(path)).exists())
    assert not missing, f"README.md's commands cite paths that are not in the repository: {missing}"


def test_the_readme_lists_every_module_of_the_test_harness() -> None:
    start = readme().index("`tickcast.testing` (no test-framework imports) is the one harness")
    paragraph = readme()[start : readme().index("\n\n", start)]
    named = {span for span in CODE.findall(paragraph) if re.fullmatch(r"[a-z_]+", span)}
    package = ROOT / "services" / "tickcast" / "testing"
    modules = {path.stem for path in package.glob("*.py") if path.stem != "__init__"}
    assert not modules - named, f"README's harness paragraph omits tickcast.testing modules: {sorted(modules - named)}"


def test_every_test_the_readme_names_by_its_beginning_exists() -> None:
    # `test_a_rolling_deploy_between_the_two_fetch_paths_…`: a test function, its name cut short.
    prefixes = set(re.findall(r"`(test_[a-z0-9_]+)…`", readme()))
    assert prefixes, "the README names no test by its beginning: the pattern is broken"
    sources = [path.read_text(encoding="utf-8") for path in (ROOT / "tests").rglob("test_*.py")]
    missing = sorted(p for p in prefixes if not any(re.search(rf"def {p}\w*\(", text) for text in sources))
    assert not missing, f"README.md names tests that no test module defines: {missing}"
