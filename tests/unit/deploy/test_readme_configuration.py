"""README's configuration tables name every setting each service reads, and only those, with the code's defaults."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from tests.unit.deploy.files import ROOT
from tickcast.client.settings import ClientSettings
from tickcast.common.settings import CommonSettings
from tickcast.gateway.settings import GatewaySettings
from tickcast.ops.settings import OpsSettings
from tickcast.predictor.settings import PredictorSettings
from tickcast.producer.settings import ProducerSettings
from tickcast.subscriber.settings import SubscriberSettings

#: The "service" column's words and the class each one reads its settings with.
SERVICES: dict[str, type[BaseSettings]] = {
    "all": CommonSettings,
    "predictor": PredictorSettings,
    "producer": ProducerSettings,
    "subscriber": SubscriberSettings,
    "gateway": GatewaySettings,
    "ops": OpsSettings,
    "client": ClientSettings,
}
PREFIX = "TICKCAST_"
CELL = re.compile(r"`([^`]+)`")


def env_name(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


def own_fields(cls: type[BaseSettings]) -> set[str]:
    """The fields a service's class declares itself; ``all`` also owns the Kafka client fields it inherits."""
    if cls is CommonSettings:
        return set(CommonSettings.model_fields)
    return {f for f in cls.model_fields if f in vars(cls).get("__annotations__", {})}


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def expand(cell: str, known: set[str]) -> list[str]:
    """The variables a names cell lists; ``_SUFFIX`` is short for the full name before it, its ending replaced.

    >>> expand("`TICKCAST_GATEWAY_HOST` / `_PORT`", {"TICKCAST_GATEWAY_HOST", "TICKCAST_GATEWAY_PORT"})
    ['TICKCAST_GATEWAY_HOST', 'TICKCAST_GATEWAY_PORT']
    >>> expand("`TICKCAST_SASL_*`", set())
    ['TICKCAST_SASL_*']
    """
    names: list[str] = []
    first = ""
    for token in CELL.findall(cell):
        if token.startswith(PREFIX):
            names.append(token)
            first = token
            continue
        cuts = [i for i, c in enumerate(first) if c == "_"]
        candidates = [first[:cut] + token for cut in reversed(cuts) if first[:cut] + token in known]
        names.append(candidates[0] if candidates else first[: cuts[-1]] + token)
    return names


def rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith(f"| `{PREFIX}")
    ]


Row = tuple[list[str], list[str], str]


def table_rows(readme: str) -> list[Row]:
    """(variables, services, default cell) of every row of the Configuration and Security tables."""
    known = {env_name(f) for cls in SERVICES.values() for f in cls.model_fields}
    found: list[Row] = []
    for cells in rows(section(readme, "## Configuration")):
        found.append((expand(cells[0], known), [s.strip() for s in cells[1].split(",")], cells[2]))
    for cells in rows(section(readme, "## Security")):
        found.append((expand(cells[0], known), ["all"], cells[1]))
    return found


def documented(readme: str) -> list[tuple[str, list[str]]]:
    return [(name, services) for names, services, _ in table_rows(readme) for name in names]


def covers(name: str, variable: str) -> bool:
    return variable == name or (name.endswith("*") and variable.startswith(name[:-1]))


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_setting_a_service_reads_is_in_the_readme(service: str) -> None:
    table = documented(readme())
    missing = sorted(
        env_name(field)
        for field in own_fields(SERVICES[service])
        if not any(covers(name, env_name(field)) and service in services for name, services in table)
    )
    assert not missing, f"README's configuration table lacks these {service} settings: {missing}"


def test_every_variable_in_the_readme_tables_is_read_by_the_service_it_names() -> None:
    wrong = sorted(
        f"{name} ({service})"
        for name, services in documented(readme())
        for service in services
        if not name.endswith("*")
        and (service not in SERVICES or name.removeprefix(PREFIX).lower() not in SERVICES[service].model_fields)
    )
    assert not wrong, f"README's configuration tables name settings their service does not read: {wrong}"


def literal(value: Any) -> str | None:
    """How the README writes a code default; None when it has no literal form (unset)."""
    if value is None or value == "":
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def same(written: str, value: Any) -> bool:
    if written == "unset":
        return literal(value) is None
    quoted = CELL.findall(written)
    if not quoted or any(c in quoted[0] for c in "<$"):
        return True  # words ("system CAs") or a placeholder (`<host>-<pid>`): nothing literal to compare
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(quoted[0].replace(",", "")) == float(value)
    return quoted[0] == literal(value)


def test_the_readme_tables_give_the_codes_defaults() -> None:
    # A cell holds one default per variable ("`300` / `0.01`"), and one per service ("`5`, `20`").
    wrong = []
    for names, services, cell in table_rows(readme()):
        names = [name for name in names if not name.endswith("*")]
        parts = [p.strip() for p in cell.split(" / ")]
        for name, part in zip(names, parts if len(parts) == len(names) else [cell] * len(names), strict=True):
            per_service = [p.strip() for p in part.split(",")]
            for service, written in zip(
                services, per_service if len(per_service) == len(services) else [part] * len(services), strict=True
            ):
                field = SERVICES[service].model_fields.get(name.removeprefix(PREFIX).lower())
                if field is None or field.default_factory is not None:
                    continue  # an unknown name fails the test above; a factory's default has no literal
                if not same(written, field.default):
                    wrong.append(f"{name} ({service}): README {written}, code {field.default!r}")
    assert not wrong, f"README's configuration defaults differ from the code: {wrong}"
