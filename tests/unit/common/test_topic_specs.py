"""The topic specs say what the code does: the dead letters' headers, the lineage fields, the configs."""

from __future__ import annotations

from tickcast.common.contracts.base import load_schema
from tickcast.common.errors import Reason
from tickcast.common.records import Lineage
from tickcast.common.settings import CommonSettings
from tickcast.common.topic_specs import DEAD_LETTER_HEADERS, LINEAGE_FIELDS, by_role, topic_specs
from tickcast.predictor.publishing import MAX_DEAD_LETTER_KEY_BYTES, fit_dead_letter
from tickcast.predictor.runtime import DeadLettered, dead_letter_headers


def test_every_header_a_dead_letter_can_carry_is_declared() -> None:
    headers = dead_letter_headers(Reason.BAD_PRICE, "x", Lineage("ticks", 1, 2, 3), "w", 4)
    cut = fit_dead_letter(DeadLettered(b"k" * (MAX_DEAD_LETTER_KEY_BYTES + 1), b"v" * 5000, headers), 4000)
    written = {name for name, _ in headers} | {name for name, _ in cut.headers} | {"tickcast.payload_dropped"}
    assert written == set(DEAD_LETTER_HEADERS)


def test_every_lineage_field_is_a_prediction_field() -> None:
    fields = {f["name"] for f in load_schema("prediction.avsc")["fields"]}
    assert set(LINEAGE_FIELDS) <= fields


def test_retention_for_events_compaction_for_snapshots_and_durability_on_a_cluster() -> None:
    specs = by_role(topic_specs(CommonSettings(replication_factor=3), group_id="g"))
    assert specs["snapshots"].name == "g-snapshots"
    assert specs["snapshots"].configs["cleanup.policy"] == "compact"
    assert "retention.ms" not in specs["snapshots"].configs, "a compacted topic keeps each symbol's latest state"
    for role in ("ticks", "predictions", "dead_letters"):
        assert specs[role].configs["cleanup.policy"] == "delete"
        assert int(specs[role].configs["retention.ms"]) >= 86_400_000
    assert {s.configs["min.insync.replicas"] for s in specs.values()} == {"2"}
    assert {s.replication_factor for s in specs.values()} == {3}
