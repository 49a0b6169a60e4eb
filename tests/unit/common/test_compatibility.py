"""The compatibility gate: each breaking change is refused with a reason naming field and rule; safe ones pass."""

from __future__ import annotations

import copy
import io
import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest

from tickcast.common.contracts import compatibility
from tickcast.common.contracts.base import load_schema, schemas_dir
from tickcast.common.contracts.compatibility import Mode, breaches
from tickcast.common.contracts.gate import check_catalogue, schema_fingerprint
from tickcast.testing.environment import run_tickcast

PREDICTION = load_schema("prediction.avsc")


def changed(schema: dict[str, Any], field: str, **replace: Any) -> dict[str, Any]:
    new = copy.deepcopy(schema)
    for f in new["fields"]:
        if f["name"] == field:
            f.update(replace)
    return new


def without(schema: dict[str, Any], field: str) -> dict[str, Any]:
    new = copy.deepcopy(schema)
    new["fields"] = [f for f in new["fields"] if f["name"] != field]
    return new


def with_field(schema: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(schema)
    new["fields"].append(field)
    return new


BREAKING = {
    # Under FULL, the mode of predictions: an old reader needs the field and has no default for it.
    "field removed without default": (without(PREDICTION, "worker"), Mode.FULL_TRANSITIVE, "worker", "forward"),
    "field added without default": (
        with_field(PREDICTION, {"name": "venue", "type": "string"}),
        Mode.BACKWARD_TRANSITIVE,
        "venue",
        "backward",
    ),
    "type narrowed": (changed(PREDICTION, "source_offset", type="int"), Mode.BACKWARD, "source_offset", "backward"),
    "enum symbol removed": (
        changed(PREDICTION, "status", type={"type": "enum", "name": "PredictionStatus", "symbols": ["READY"]}),
        Mode.BACKWARD_TRANSITIVE,
        "status",
        "backward",
    ),
}


@pytest.mark.parametrize("change", sorted(BREAKING))
def test_a_breaking_change_is_refused_by_rules_and_codec_with_field_and_rule(change: str) -> None:
    new, mode, field, direction = BREAKING[change]
    found = breaches(new, PREDICTION, mode, "v2", "v1")
    assert {b.judge for b in found} == {"rules", "codec"}, found
    rule = next(b for b in found if b.judge == "rules")
    assert rule.direction == direction
    assert f"'{field}'" in rule.reason, rule.reason
    words = {"field removed without default": "removed", "field added without default": "without a default",
             "type narrowed": "type narrowed", "enum symbol removed": "enum symbol removed"}  # fmt: skip
    assert words[change] in rule.reason, rule.reason


def test_a_field_added_with_a_default_is_accepted_in_every_mode() -> None:
    new = with_field(PREDICTION, {"name": "venue", "type": ["null", "string"], "default": None})
    for mode in Mode:
        assert breaches(new, PREDICTION, mode) == [], mode


def test_a_type_widened_is_backward_but_not_forward_compatible() -> None:
    new = changed(PREDICTION, "horizon_ticks", type="long")
    assert breaches(new, PREDICTION, Mode.BACKWARD) == []
    assert {b.direction for b in breaches(new, PREDICTION, Mode.FULL)} == {"forward"}


def test_bytes_read_as_string_is_accepted_as_the_avro_spec_promotes_it() -> None:
    # Schema registries accept this promotion; the codec judge must not refuse it for a sample that is not UTF-8.
    new = changed(PREDICTION, "worker", type="bytes")
    assert breaches(PREDICTION, new, Mode.BACKWARD) == []


#: A named type whose definition moves to a field added before its old place (fastavro issue #780's shape).
INNER = {"type": "record", "name": "Inner", "fields": [{"name": "a", "type": "long"}]}
MOVED_OLD = {"type": "record", "name": "Envelope", "namespace": "t", "fields": [{"name": "foo", "type": INNER}]}
MOVED_NEW = {"type": "record", "name": "Envelope", "namespace": "t", "fields": [
    {"name": "bar", "type": ["null", INNER], "default": None},
    {"name": "foo", "type": "Inner"}]}  # fmt: skip
#: An enum defined inline in one record of the writer and by name in the reader (fastavro issue #896's shape).
COLOR = {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}
INLINE_WRITER = {"type": "record", "name": "Envelope", "fields": [
    {"name": "a", "type": {"type": "record", "name": "A", "fields": [{"name": "c", "type": COLOR}]}},
    {"name": "b", "type": {"type": "record", "name": "B", "fields": [{"name": "c", "type": "Color"}]}}]}  # fmt: skip
INLINE_READER = {"type": "record", "name": "Envelope", "fields": [
    {"name": "b", "type": {"type": "record", "name": "B", "fields": [{"name": "c", "type": COLOR}]}},
    {"name": "a", "type": {"type": "record", "name": "A", "fields": [{"name": "c", "type": "Color"}]}}]}  # fmt: skip


@pytest.mark.parametrize(("new", "old"), [(MOVED_NEW, MOVED_OLD), (INLINE_READER, INLINE_WRITER)])
def test_named_types_defined_elsewhere_are_compatible(new: dict[str, Any], old: dict[str, Any]) -> None:
    assert breaches(new, old, Mode.FULL_TRANSITIVE) == []


def test_fastavros_false_incompatible_on_named_types_is_a_note_not_a_breach(monkeypatch: pytest.MonkeyPatch) -> None:
    # fastavro releases with issues #780/#896 raise this for the schemas above; the rules judge them compatible.
    def resolver_with_the_bug(*args: Any, **kwargs: Any) -> Any:
        raise fastavro.read.SchemaResolutionError("Schema mismatch: {'type': 'enum', 'name': 'Color'} is not Color")

    monkeypatch.setattr(compatibility.fastavro, "schemaless_reader", resolver_with_the_bug)
    found = breaches(INLINE_READER, INLINE_WRITER, Mode.BACKWARD)
    assert found and not any(b.blocking for b in found), found
    # Without named references the same codec failure stays a breach.
    plain = {"type": "record", "name": "T", "fields": [{"name": "a", "type": "long"}]}
    assert all(b.blocking for b in breaches(plain, plain, Mode.BACKWARD))


def test_sample_records_round_trip_through_the_real_codec_for_every_contract() -> None:
    for name in ("tick.avsc", "prediction.avsc", "snapshot.avsc"):
        schema = compatibility.without_logical_types(load_schema(name))
        parsed = fastavro.parse_schema(schema)
        for record in compatibility.sample_records(schema):
            out = io.BytesIO()
            fastavro.schemaless_writer(out, parsed, record)
            out.seek(0)
            assert fastavro.schemaless_reader(out, parsed, None) == record


def catalogue_copy(tmp_path: Path) -> Path:
    for path in schemas_dir().glob("*.avsc"):
        shutil.copy(path, tmp_path)
    shutil.copy(schemas_dir() / "catalogue.json", tmp_path)
    return tmp_path


def add_version(directory: Path, subject: str, file: str, schema: dict[str, Any]) -> None:
    (directory / file).write_text(json.dumps(schema))
    catalogue = json.loads((directory / "catalogue.json").read_text())
    new_id = max(e["id"] for e in catalogue["schemas"]) + 1
    catalogue["schemas"].append(
        {"id": new_id, "subject": subject, "file": file, "fingerprint": schema_fingerprint(schema)}
    )
    (directory / "catalogue.json").write_text(json.dumps(catalogue))


def test_the_shipped_catalogue_passes_the_gate() -> None:
    assert check_catalogue(schemas_dir()) == []


def test_the_gate_refuses_a_new_version_that_breaks_an_earlier_one(tmp_path: Path) -> None:
    directory = catalogue_copy(tmp_path)
    add_version(directory, "predictions-value", "prediction-v9.avsc", changed(PREDICTION, "source_offset", type="int"))
    findings = [str(f) for f in check_catalogue(directory)]
    assert findings, "a narrowed type passed the gate"
    assert all("prediction-v9.avsc" in f for f in findings)
    assert any("field 'source_offset'" in f and "type narrowed" in f for f in findings), findings


def test_the_gate_accepts_a_field_added_with_a_default(tmp_path: Path) -> None:
    directory = catalogue_copy(tmp_path)
    safe = with_field(PREDICTION, {"name": "venue", "type": ["null", "string"], "default": None})
    add_version(directory, "predictions-value", "prediction-v9.avsc", safe)
    assert check_catalogue(directory) == []


def test_the_gate_refuses_an_id_edited_in_place_and_a_file_no_id_names(tmp_path: Path) -> None:
    directory = catalogue_copy(tmp_path)
    (directory / "tick.avsc").write_text(json.dumps(with_field(load_schema("tick.avsc"), {"name": "x", "type": "int"})))
    (directory / "stray.avsc").write_text("{}")
    findings = " | ".join(str(f) for f in check_catalogue(directory))
    assert "id 1 (tick.avsc) was edited in place" in findings
    assert "stray.avsc is in" in findings


def test_a_subject_not_declared_is_checked_backward_transitive(tmp_path: Path) -> None:
    directory = catalogue_copy(tmp_path)
    catalogue = json.loads((directory / "catalogue.json").read_text())
    del catalogue["subjects"]["predictions-value"]
    (directory / "catalogue.json").write_text(json.dumps(catalogue))
    # Removing a required field is BACKWARD compatible (the new reader ignores it), so it passes without FULL.
    add_version(directory, "predictions-value", "prediction-v9.avsc", without(PREDICTION, "worker"))
    assert check_catalogue(directory) == []


def test_schema_check_exits_1_naming_the_field_and_rule(tmp_path: Path) -> None:
    directory = catalogue_copy(tmp_path)
    enum = {"type": "enum", "name": "PredictionStatus", "symbols": ["READY"]}
    # The next free id, whatever other contracts (model-events, new prediction versions) took before it.
    new_id = max(e["id"] for e in json.loads((directory / "catalogue.json").read_text())["schemas"]) + 1
    add_version(directory, "predictions-value", "prediction-v9.avsc", changed(PREDICTION, "status", type=enum))
    result = run_tickcast("schema", "check", "--local-only", "--directory", str(directory), env={})
    assert result.returncode == 1
    assert (
        f"INCOMPATIBLE predictions-value: id {new_id} (prediction-v9.avsc) is not FULL_TRANSITIVE compatible"
        in result.stderr
    )
    assert "field 'status'" in result.stderr and "enum symbol removed" in result.stderr


@pytest.mark.parametrize(
    ("field", "said"),
    [
        # The Avro spec up to 1.11 (and Java's Schema.Parser of those releases, which refuses the schema) reads a
        # union's default as its FIRST branch; fastavro accepts a default that matches any branch.
        (
            {"name": "venue", "type": ["null", "string"], "default": "XNYS"},
            "default 'XNYS' is not a valid null (a union's default",
        ),
        (
            {"name": "venue", "type": ["string", "null"], "default": None},
            "default None is not a valid string (a union's default",
        ),
        ({"name": "n", "type": "int", "default": 2**40}, "default 1099511627776 is not a valid int"),
        ({"name": "n", "type": "long", "default": True}, "default True is not a valid long"),
        (
            {"name": "side", "type": {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}, "default": "HOLD"},
            "default 'HOLD' is not a valid enum",
        ),
        (
            {"name": "ids", "type": {"type": "array", "items": "long"}, "default": ["x"]},
            "default 'x' is not a valid long",
        ),
        (
            {
                "name": "at",
                "type": {"type": "record", "name": "At", "fields": [{"name": "ms", "type": "long"}]},
                "default": {},
            },
            "default {} has no value for field 'ms'",
        ),
    ],
)
def test_the_gate_refuses_a_default_other_avro_clients_refuse(tmp_path: Path, field: dict[str, Any], said: str) -> None:
    directory = catalogue_copy(tmp_path)
    add_version(directory, "predictions-value", "prediction-v9.avsc", with_field(PREDICTION, field))
    findings = [str(f) for f in check_catalogue(directory)]
    assert any("prediction-v9.avsc" in f and f"field '{field['name']}'" in f and said in f for f in findings), (
        f"{field} passed the gate: {findings}"
    )


@pytest.mark.parametrize(
    ("field", "said"),
    [
        ({"name": "x", "type": "nope"}, "nope"),
        ({"name": "x", "type": {"type": "enum", "name": "E", "symbols": ["A"], "default": "B"}}, "enum"),
    ],
)
def test_a_contract_that_is_no_avro_schema_is_one_error_line_naming_it(
    tmp_path: Path, field: dict[str, Any], said: str
) -> None:
    directory = catalogue_copy(tmp_path)
    (directory / "prediction-v9.avsc").write_text(json.dumps(with_field(PREDICTION, field)))
    catalogue = json.loads((directory / "catalogue.json").read_text())
    catalogue["schemas"].append({"id": 99, "subject": "predictions-value", "file": "prediction-v9.avsc"})
    (directory / "catalogue.json").write_text(json.dumps(catalogue))
    result = run_tickcast("schema", "check", "--local-only", "--directory", str(directory), env={})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-600:]
    assert "prediction-v9.avsc is not a valid Avro schema" in result.stderr and said in result.stderr, result.stderr


def test_the_gate_refuses_an_id_given_to_a_second_schema(tmp_path: Path) -> None:
    # Records already written under id 2 (prediction-v1) would decode with the new file's schema: the store keeps
    # the last entry of an id.
    directory = catalogue_copy(tmp_path)
    schema = with_field(PREDICTION, {"name": "venue", "type": ["null", "string"], "default": None})
    (directory / "prediction-v9.avsc").write_text(json.dumps(schema))
    catalogue = json.loads((directory / "catalogue.json").read_text())
    catalogue["schemas"].append(
        {
            "id": 2,
            "subject": "predictions-value",
            "file": "prediction-v9.avsc",
            "fingerprint": schema_fingerprint(schema),
        }
    )
    (directory / "catalogue.json").write_text(json.dumps(catalogue))
    findings = [str(f) for f in check_catalogue(directory)]
    assert any("id 2" in f and "prediction-v1.avsc" in f and "prediction-v9.avsc" in f for f in findings), (
        f"id 2 given to a second schema passed the gate: {findings}"
    )
