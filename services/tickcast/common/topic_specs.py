"""Every topic tickcast uses, declared once: what it holds, how long, who writes and reads it.

``tickcast topics create``, the worker (snapshots), ``tickcast topics check``, ``tickcast catalog`` (its
table, the README's table and the AsyncAPI document) and the test pipeline all read these specs, so the
topics a cluster gets and the documentation of them cannot drift apart.

Retention is time-based for the event topics (ticks are re-readable for a week, long enough to rebuild
any symbol's model; dead letters a month, long enough to investigate and replay; the receipts of replayed
letters twice that, compacted too, one per letter). Snapshots are keyed by
symbol and compacted, so the latest state of each symbol is kept and a tombstone forgets one. On a real
cluster (replication factor 3 or more) ``min.insync.replicas=2`` makes an ``acks=all`` write survive the
loss of a broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tickcast.common.settings import CommonSettings

DAY_MS = 86_400_000
TICKS_RETENTION_MS = 7 * DAY_MS
PREDICTIONS_RETENTION_MS = 7 * DAY_MS
DEAD_LETTERS_RETENTION_MS = 30 * DAY_MS
#: An audit trail: a year of which model served each symbol, and why it changed.
MODEL_EVENTS_RETENTION_MS = 365 * DAY_MS
#: Kept as long as the letters they stand for could still be replayed (the dead letters' retention), and then
#: some; keyed by the letter, so compaction keeps one per letter and nothing is lost by it.
REPLAY_RECEIPTS_RETENTION_MS = 2 * DEAD_LETTERS_RETENTION_MS

#: Headers of every dead letter (prefix ``tickcast.``); the value is the refused record, byte for byte.
DEAD_LETTER_HEADERS: dict[str, str] = {
    "tickcast.reason": "reason code, e.g. bad_price, unknown_schema_id",
    "tickcast.message": "what was wrong, in words",
    "tickcast.source.topic": "topic of the refused record",
    "tickcast.source.partition": "its partition",
    "tickcast.source.offset": "its offset",
    "tickcast.source.timestamp": "its Kafka timestamp (ms)",
    "tickcast.rejected_at": "when the worker refused it (ms)",
    "tickcast.worker": "the worker that refused it",
    "tickcast.original.key_bytes": "only when the record was cut to fit: size of the original key",
    "tickcast.original.value_bytes": "only when the record was cut to fit: size of the original value",
    "tickcast.payload_dropped": "only when even the cut record was refused: why",
}

#: Prediction fields that tie it to its tick, its model and its model's state (see prediction.avsc).
LINEAGE_FIELDS: dict[str, str] = {
    "source_topic": "topic of the tick",
    "source_partition": "partition of the tick",
    "source_offset": "offset of the tick; (topic, partition, offset) is unique per tick",
    "tick_produced_at": "Kafka timestamp of the tick",
    "model_name": "model recipe",
    "model_version": "recipe version + River release",
    "worker": "worker that made the prediction",
    "model_recipe_version": "recipe version alone (schema id 6 on)",
    "state_origin": "FRESH (learned here) or SNAPSHOT (restored), UNKNOWN before id 6",
    "state_since_offset": "training position: first tick learned (FRESH) or the snapshot's applied offset",
    "state_snapshot_generation": "group generation of the restored snapshot",
}


@dataclass(frozen=True, slots=True)
class Client:
    """A service that writes or reads a topic, and how (its consumer group, or why it has none)."""

    service: str
    group: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: its name, layout, declared configs and clients."""

    role: str
    name: str
    summary: str
    key: str
    value: str
    subject: str | None
    """Catalogue subject of the value contract (None: no Avro contract, e.g. raw dead letters)."""
    partitions: int
    replication_factor: int
    configs: dict[str, str]
    producers: tuple[Client, ...]
    consumers: tuple[Client, ...]
    headers: dict[str, str] = field(default_factory=dict)
    lineage: dict[str, str] = field(default_factory=dict)
    created_by: str = "tickcast topics create"


def cluster_configs(replication_factor: int) -> dict[str, str]:
    """Configs every topic gets for durability: at most 2 in-sync replicas, and never more than there are.

    >>> cluster_configs(1), cluster_configs(3)
    ({'min.insync.replicas': '1'}, {'min.insync.replicas': '2'})
    """
    return {"min.insync.replicas": str(min(2, max(1, replication_factor - 1)))}


#: How soon a snapshot superseded by a newer one of its symbol can be compacted away. Kafka never compacts the
#: active segment, and by default a segment rolls only after 7 days or 1 GiB: a new owner reads its partitions'
#: snapshots to the end on every take-over, so without a roll it could read a day or more of superseded states
#: (50 symbols over 8 partitions write ~12 KB/s per partition at the default cadence).
SNAPSHOT_COMPACTION_LAG_MS = 15 * 60 * 1000


def compacting(replication_factor: int) -> dict[str, str]:
    """Configs of a latest-per-key topic whose superseded records go within ``SNAPSHOT_COMPACTION_LAG_MS``.

    >>> compacting(3)["segment.ms"], compacting(3)["max.compaction.lag.ms"]
    ('900000', '900000')
    """
    lag = str(SNAPSHOT_COMPACTION_LAG_MS)
    return {
        "cleanup.policy": "compact",
        "segment.ms": lag,  # the active segment is never compacted: roll it this often
        "max.compaction.lag.ms": lag,  # then compact it within this, however little of the log is dirty
        "min.cleanable.dirty.ratio": "0.1",
        **cluster_configs(replication_factor),
    }


def receipts(replication_factor: int) -> dict[str, str]:
    """Configs of the replay receipts: compacted (keyed by letter, so a letter replayed again with ``--again``
    keeps one receipt) and also deleted after a retention, as their letters are. Replay does not depend on
    compaction (a broker without it, like Tansu, keeps every receipt, which says the same).

    >>> receipts(1)["cleanup.policy"]
    'compact,delete'
    """
    return {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(REPLAY_RECEIPTS_RETENTION_MS),
        **cluster_configs(replication_factor),
    }


def deleting(retention_ms: int, replication_factor: int) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(retention_ms), **cluster_configs(replication_factor)}


def topic_specs(
    settings: CommonSettings, group_id: str = "tickcast-predictor", snapshots_topic: str | None = None
) -> list[TopicSpec]:
    """The topics of a deployment with these settings and predictor group.

    >>> specs = topic_specs(CommonSettings())
    >>> [(s.name, s.configs["cleanup.policy"]) for s in specs][2:]
    [('ticks.dlq', 'delete'), ('ticks.dlq.receipts', 'compact,delete'), ('tickcast-predictor-snapshots', 'compact'), \
('model-events', 'delete')]
    """
    rf, partitions = settings.replication_factor, settings.partitions
    predictor = Client("predictor (tickcast worker)", group_id)
    predictor_writes = Client("predictor (tickcast worker)", None, f"worker of group {group_id}")
    subscriber = Client("tickcast subscribe", None, "TICKCAST_SUBSCRIBER_GROUP_ID, or a private group without commits")
    return [
        TopicSpec(
            "ticks", settings.ticks_topic, "Trades (or quote mids), one record per tick.",
            "symbol (UTF-8)", "tickcast.v1.Tick", "ticks-value", partitions, rf,
            deleting(TICKS_RETENTION_MS, rf),
            (Client("producer (tickcast produce)", None, "idempotent, murmur2 partitioner"),
             Client("tickcast dlq replay", None, "header tickcast.replayed_from")),
            (predictor,),
        ),
        TopicSpec(
            "predictions", settings.predictions_topic, "One forecast per tick, on the tick's partition number.",
            "symbol (UTF-8)", "tickcast.v1.Prediction", "predictions-value", partitions, rf,
            deleting(PREDICTIONS_RETENTION_MS, rf), (predictor_writes,),
            (subscriber, Client("trading systems", None, "their own groups")),
            lineage=LINEAGE_FIELDS,
        ),
        TopicSpec(
            "dead_letters", settings.dlq_topic, "Ticks the workers refused, as they came, with the reason.",
            "original key", "original bytes, untouched", None, partitions, rf,
            deleting(DEAD_LETTERS_RETENTION_MS, rf), (predictor_writes,),
            (Client("tickcast dlq list/summary/replay", None, "assigned partitions, no group"),
             Client("tickcast subscribe --dead-letters", None, subscriber.note)),
            headers=DEAD_LETTER_HEADERS,
        ),
        TopicSpec(
            "replay_receipts", settings.dlq_receipts_topic,
            "One per dead letter replayed, written once its tick was delivered: replay skips those (unless --again).",
            "partition:offset of the letter (UTF-8)", "tickcast.v1.ReplayReceipt", "dlq-receipts-value", partitions, rf,
            receipts(rf), (Client("tickcast dlq replay", None, "after the replayed tick's delivery"),),
            (Client("tickcast dlq replay", None, "reads every partition from the start, no group"),),
            created_by="tickcast topics create (and tickcast dlq replay, when missing)",
        ),
        TopicSpec(
            "snapshots", snapshots_topic or f"{group_id}-snapshots",
            "Each symbol's model state (HMAC-signed), the latest per symbol; a tombstone forgets a symbol.",
            "symbol (UTF-8)", "tickcast.v1.SymbolSnapshot", "snapshots-value", partitions, rf,
            compacting(rf), (predictor_writes,),
            (Client("predictor (tickcast worker)", None, "on assignment: reads its partitions to the end"),),
            created_by="the predictor worker at start (and tickcast topics create)",
        ),
        TopicSpec(
            "model_events", settings.model_events_topic,
            "Per symbol: promotions and demotions of its serving model, and drift detections, with the evidence.",
            "symbol (UTF-8)", "tickcast.v1.ModelEvent", "model-events-value", partitions, rf,
            deleting(MODEL_EVENTS_RETENTION_MS, rf), (predictor_writes,),
            (Client("tickcast models", None, "reads every partition from the start, no group"),),
        ),
    ]  # fmt: skip


def by_role(specs: list[TopicSpec]) -> dict[str, TopicSpec]:
    """Specs by role ('ticks', 'predictions', 'dead_letters', 'replay_receipts', 'snapshots', 'model_events').

    >>> by_role(topic_specs(CommonSettings()))["dead_letters"].name
    'ticks.dlq'
    """
    return {spec.role: spec for spec in specs}
