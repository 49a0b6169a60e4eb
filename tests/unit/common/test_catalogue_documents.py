"""The catalogue's documents: the AsyncAPI 3.0 document is valid and complete, the README's table is current."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tickcast.common.asyncapi import asyncapi_document
from tickcast.common.catalogue_table import END, START, markdown_table, readme_table
from tickcast.common.contracts.base import schemas_dir
from tickcast.common.contracts.catalogue import read_catalogue
from tickcast.common.settings import CommonSettings
from tickcast.common.topic_specs import topic_specs
from tickcast.testing.environment import run_tickcast

ROOT = Path(__file__).resolve().parents[3]
#: Vendored from github.com/asyncapi/spec-json-schemas (schemas/3.0.0-without-$id.json), Apache-2.0: see its LICENSE.
ASYNCAPI_SCHEMA = ROOT / "tests" / "vendor" / "asyncapi" / "asyncapi-3.0.0.schema.json"
SPECS = topic_specs(CommonSettings(replication_factor=3), group_id="g")
CATALOGUE = read_catalogue(schemas_dir())


def validation_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8")))
    return [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(document)]


def document() -> dict[str, Any]:
    return asyncapi_document(SPECS, CATALOGUE, "kafka:9092")


def test_the_vendored_schema_comes_with_its_licence() -> None:
    assert "Apache License" in (ASYNCAPI_SCHEMA.parent / "LICENSE").read_text(encoding="utf-8")


def test_the_asyncapi_document_is_valid_asyncapi_3() -> None:
    assert validation_errors(document()) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [(("asyncapi",), "2.6.0"), (("channels", "ticks", "bindings", "kafka", "partitions"), 0),
     (("operations", "predictor_tickcast_worker_receives_ticks", "action"), "consume")],
)  # fmt: skip
def test_the_validation_bites(path: tuple[str, ...], value: object) -> None:
    broken = copy.deepcopy(document())
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert validation_errors(broken), f"setting {path} to {value!r} still validates"


def test_every_topic_contract_version_config_and_client_is_in_the_document() -> None:
    doc = document()
    assert {c["address"] for c in doc["channels"].values()} == {s.name for s in SPECS}
    for spec in SPECS:
        channel = doc["channels"][spec.role]
        kafka = channel["bindings"]["kafka"]
        assert (kafka["partitions"], kafka["replicas"]) == (spec.partitions, 3)
        assert kafka["topicConfiguration"]["cleanup.policy"] == spec.configs["cleanup.policy"].split(",")
        ids = {m.get("x-schema-id") for m in channel["messages"].values()} - {None}
        assert ids == {e.schema_id for e in CATALOGUE.subjects().get(spec.subject or "", [])}
        senders = [o for o in doc["operations"].values() if o["channel"]["$ref"] == f"#/channels/{spec.role}"]
        assert {o["x-service"] for o in senders if o["action"] == "send"} == {c.service for c in spec.producers}
        assert {o["x-service"] for o in senders if o["action"] == "receive"} == {c.service for c in spec.consumers}
    ticks_reader = doc["operations"]["predictor_tickcast_worker_receives_ticks"]
    assert ticks_reader["bindings"]["kafka"]["groupId"]["enum"] == ["g"]
    assert "tickcast.reason" in doc["channels"]["dead_letters"]["messages"]["dead_letters"]["headers"]["properties"]
    assert "state_origin" in doc["channels"]["predictions"]["messages"]["predictions"]["x-lineage"]


def test_tickcast_catalog_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.json"
    result = run_tickcast("catalog", "--asyncapi", str(target), env={"TICKCAST_GROUP_ID": "g"})
    assert result.returncode == 0, result.stderr
    written = json.loads(target.read_text(encoding="utf-8"))
    assert validation_errors(written) == []
    assert written["channels"]["snapshots"]["address"] == "g-snapshots"


def test_the_readme_table_is_the_generated_one() -> None:
    table = readme_table((ROOT / "README.md").read_text(encoding="utf-8"))
    # Markers lost in an edit would leave a hand-made table unchecked: that fails too.
    assert table is not None, f"README.md has lost its {START} ... {END} markers around the topics table"
    expected = markdown_table(topic_specs(CommonSettings()), CATALOGUE)
    assert table == expected, "README.md's catalogue table is stale: replace it with `tickcast catalog --markdown`"
