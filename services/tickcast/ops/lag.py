"""Consumer lag of the predictor group on the ticks topic: per partition, with owners and totals.

For each partition: the group's committed offset, the end offset (high
watermark), ``lag = end - position`` (position = the committed offset, or the
low watermark when the group never committed there, since the workers start at
the earliest offset), and the worker that owns it when that is known.

Owners come from the group's member assignments (``describe_consumer_groups``)
on Apache Kafka, and from the workers' own ``/stats`` pages when their URLs are
given. The embedded broker (Tansu 0.6) reports a group's members without their
assignments, so there the ``/stats`` URLs are the only source.

Exactness: on Apache Kafka the lag is exact (as of the last commit; Faust
commits every few seconds). The embedded broker (Tansu 0.6) answers a
ListOffsets "latest" request with the *last batch's* base offset + 1, not the
offset after the last record, so there the end offset, and hence the lag, is
only exact when every record is its own batch (e.g. a producer with
``linger.ms=0`` and ``batch.num.messages=1``). With batching producers the lag
reads low, and is floored at 0 when the committed offset is past the reported
end. Committed offsets are exact on both, so the processing rate derived from
them is too.

The pure functions (:func:`build_report`, :func:`owners_from_stats`,
:func:`lag_table`, ...) are separate from the Kafka and HTTP I/O
(:class:`LagReader`, :func:`fetch_stats`).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from rich.table import Table

from tickcast.common.kafka import new_admin, new_consumer
from tickcast.common.security import KafkaClientSettings

log = structlog.get_logger("tickcast.lag")


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition: where the group is, where the log ends, how far behind, and who reads it."""

    partition: int
    committed: int | None
    start: int
    end: int
    owner: str | None = None

    @property
    def position(self) -> int:
        """Where the group resumes: its committed offset, else the start of the log (auto.offset.reset=earliest).

        A commit below the start (Kafka deleted those records after retention) resumes at the start too.

        >>> PartitionLag(0, committed=3, start=50, end=60).position
        50
        """
        return max(self.committed, self.start) if self.committed is not None else self.start

    @property
    def lag(self) -> int:
        """Records not yet processed; never negative (see the module docstring on Tansu's end offsets).

        >>> PartitionLag(0, committed=7, start=0, end=10).lag
        3
        >>> PartitionLag(1, committed=None, start=2, end=10).lag, PartitionLag(2, committed=12, start=0, end=1).lag
        (8, 0)
        """
        return max(0, self.end - self.position)


@dataclass(frozen=True, slots=True)
class LagReport:
    """Lag of one group on one topic at one moment.

    >>> r = build_report("ticks", "g", {0: 5, 1: None}, {0: (0, 9), 1: (2, 3)}, {0: "w-1"})
    >>> r.total_lag, r.total_committed, r.total_position, r.total_end, r.owners_known
    (5, 5, 7, 12, False)
    """

    topic: str
    group: str
    partitions: tuple[PartitionLag, ...]
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def total_committed(self) -> int:
        """Sum of the committed offsets, as the table's committed column shows them (none counts nothing)."""
        return sum(p.committed for p in self.partitions if p.committed is not None)

    @property
    def total_position(self) -> int:
        """Sum of the group's positions: it grows by one per processed record, so its slope is the processing rate."""
        return sum(p.position for p in self.partitions)

    @property
    def total_end(self) -> int:
        return sum(p.end for p in self.partitions)

    @property
    def owners_known(self) -> bool:
        return bool(self.partitions) and all(p.owner is not None for p in self.partitions)

    def by_owner(self) -> dict[str, int]:
        """Total lag per owning worker (``?`` for partitions whose owner is unknown).

        >>> build_report("t", "g", {0: 0, 1: 0}, {0: (0, 4), 1: (0, 1)}, {0: "w-1"}).by_owner()
        {'w-1': 4, '?': 1}
        """
        totals: dict[str, int] = {}
        for p in self.partitions:
            key = p.owner or "?"
            totals[key] = totals.get(key, 0) + p.lag
        return totals


def build_report(
    topic: str,
    group: str,
    committed: Mapping[int, int | None],
    watermarks: Mapping[int, tuple[int, int]],
    owners: Mapping[int, str],
    taken_at: datetime | None = None,
) -> LagReport:
    """Combine committed offsets, (low, high) watermarks and owners into a report, partitions in order.

    Partitions are those with watermarks; a negative committed offset (Kafka's "none") counts as no commit.

    >>> r = build_report("ticks", "g", {0: -1001}, {0: (0, 4)}, {})
    >>> r.partitions[0].committed, r.partitions[0].lag
    (None, 4)
    """
    rows = []
    for partition in sorted(watermarks):
        low, high = watermarks[partition]
        offset = committed.get(partition)
        rows.append(
            PartitionLag(
                partition=partition,
                committed=offset if offset is not None and offset >= 0 else None,
                start=low,
                end=high,
                owner=owners.get(partition),
            )
        )
    return LagReport(topic, group, tuple(rows), taken_at or datetime.now(UTC))


def owners_from_stats(stats: Iterable[Mapping[str, Any]], topic_partitions: int | None = None) -> dict[int, str]:
    """Partition -> worker id from workers' ``/stats`` JSON (``worker`` and ``assigned_partitions``).

    During a rebalance two workers may both claim a partition for a moment; then both are shown.

    >>> owners_from_stats([{"worker": "w-1", "assigned_partitions": [0, 2]}, {"worker": "w-2",
    ...                    "assigned_partitions": [1, 2]}])
    {0: 'w-1', 2: 'w-1,w-2', 1: 'w-2'}
    """
    owners: dict[int, str] = {}
    for entry in stats:
        worker = str(entry.get("worker", "?"))
        for partition in entry.get("assigned_partitions", []) or []:
            if topic_partitions is not None and not 0 <= int(partition) < topic_partitions:
                continue
            owners[int(partition)] = f"{owners[int(partition)]},{worker}" if int(partition) in owners else worker
    return owners


def owners_from_assignments(members: Iterable[tuple[str, Iterable[tuple[str, int]]]], topic: str) -> dict[int, str]:
    """Partition -> member from ``(member name, [(topic, partition), ...])`` pairs, keeping only ``topic``.

    >>> owners_from_assignments([("m1", [("ticks", 0), ("other", 0)]), ("m2", [("ticks", 1)])], "ticks")
    {0: 'm1', 1: 'm2'}
    """
    return {partition: name for name, assigned in members for t, partition in assigned if t == topic}


def report_to_dict(report: LagReport) -> dict[str, Any]:
    """The report as JSON-ready data (what ``tickcast lag --json`` prints, one object per line).

    ``total_committed``, ``total_end`` and ``total_lag`` sum the partitions' fields; ``total_position`` sums where
    the group resumes (its committed offset, else the log start), whose slope is the processing rate.

    >>> d = report_to_dict(build_report("t", "g", {0: 1}, {0: (0, 3)}, {}, datetime(2024, 1, 2, tzinfo=UTC)))
    >>> d["total_lag"], d["partitions"][0]
    (2, {'partition': 0, 'committed': 1, 'end': 3, 'lag': 2, 'owner': None})
    """
    return {
        "topic": report.topic,
        "group": report.group,
        "taken_at": report.taken_at.isoformat(),
        "total_lag": report.total_lag,
        "total_committed": report.total_committed,
        "total_position": report.total_position,
        "total_end": report.total_end,
        "partitions": [
            {"partition": p.partition, "committed": p.committed, "end": p.end, "lag": p.lag, "owner": p.owner}
            for p in report.partitions
        ],
    }


def lag_table(report: LagReport) -> Table:
    """A table for people: one row per partition, the totals as its footer, the lag per owner as its caption.

    >>> table = lag_table(build_report("ticks", "g", {0: 5, 1: None}, {0: (0, 9), 1: (0, 3)}, {0: "w-1"},
    ...                                datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)))
    >>> table.title, table.caption
    ('lag of group g on ticks at 2024-01-02T03:04:05+00:00', 'lag by owner: w-1=4 ?=3')
    >>> [(c.header, c.footer) for c in table.columns]  # doctest: +NORMALIZE_WHITESPACE
    [('partition', 'total'), ('committed', '5'), ('end', '12'), ('lag', '7'), ('owner', '')]
    >>> [list(c.cells) for c in table.columns][1:4]
    [['5', '-'], ['9', '3'], ['4', '3']]
    """
    title = f"lag of group {report.group} on {report.topic} at {report.taken_at.isoformat(timespec='seconds')}"
    by_owner = " ".join(f"{owner}={lag}" for owner, lag in report.by_owner().items())
    table = Table(
        title=title,
        caption=f"lag by owner: {by_owner}" if report.partitions else None,
        title_justify="left",
        caption_justify="left",
        show_footer=True,
        # Rich wraps a title to the table's width; a narrow table must not break the heading line.
        min_width=len(title),
    )
    footers = ("total", str(report.total_committed), str(report.total_end), str(report.total_lag))
    for header, footer in zip(("partition", "committed", "end", "lag"), footers, strict=True):
        table.add_column(header, footer=footer, justify="right")
    table.add_column("owner", footer="")
    for p in report.partitions:
        committed = "-" if p.committed is None else str(p.committed)
        table.add_row(str(p.partition), committed, str(p.end), str(p.lag), p.owner or "?")
    return table


def fetch_stats(url: str, timeout_s: float = 1.0) -> dict[str, Any] | None:
    """A worker's ``/stats`` JSON, or None if it does not answer (not started yet, or gone)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"a worker's stats URL is http(s), got {url[:64]!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # nosec B310 # http(s) only, checked above
            loaded = json.loads(response.read())
    # HTTPException: something that is not an HTTP server answers there (a mistyped port, one taken by another program).
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, ValueError) as exc:
        log.debug("stats_unavailable", url=url, error=str(exc))
        return None
    return loaded if isinstance(loaded, dict) else None


class LagReader:
    """Reads a :class:`LagReport` from Kafka (and workers' ``/stats``); keeps its clients for repeated reads.

    Usage::

        reader = LagReader(OpsSettings(), "ticks", "tickcast-predictor")
        try:
            rich.print(lag_table(reader.read()))
        finally:
            reader.close()
    """

    def __init__(
        self,
        kafka: KafkaClientSettings,
        topic: str,
        group: str,
        stats_urls: Sequence[str] = (),
        timeout_s: float = 10.0,
    ) -> None:
        self.topic = topic
        self.group = group
        self.stats_urls = list(stats_urls)
        self.timeout_s = timeout_s
        self._admin = new_admin(kafka)
        # Only for watermarks: a private group id that never subscribes, so it never joins any group.
        self._consumer = new_consumer(kafka, f"tickcast-lag-{uuid.uuid4().hex[:12]}", **{"enable.auto.commit": False})

    def read(self, stats_urls: Sequence[str] | None = None) -> LagReport:
        """One report. Raises LookupError (no such topic), TimeoutError or KafkaException (broker trouble)."""
        partitions = self._partitions()
        # Committed offsets before end offsets, as kafka-consumer-groups reads them: a commit landing between the
        # two reads then makes the lag read high (by what was processed meanwhile), never low. The other way round
        # it read low, floored at 0 as if the group had caught up, and the autoscaler saw a busy group as idle.
        committed = self._committed(partitions)
        watermarks: dict[int, tuple[int, int]] = {}
        for p in partitions:
            offsets = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=self.timeout_s, cached=False
            )
            if offsets is None:
                raise TimeoutError(f"no end offset for {self.topic}[{p}] within {self.timeout_s}s")
            watermarks[p] = (int(offsets[0]), int(offsets[1]))
        owners = self._owners_from_group()
        urls = self.stats_urls if stats_urls is None else [*self.stats_urls, *stats_urls]
        # Workers' own word beats the group's: on Tansu it is the only source.
        owners.update(owners_from_stats([s for s in (fetch_stats(u) for u in urls) if s], len(partitions)))
        return build_report(self.topic, self.group, committed, watermarks, owners)

    def close(self) -> None:
        self._consumer.close()

    def _partitions(self) -> list[int]:
        metadata = self._admin.list_topics(topic=self.topic, timeout=self.timeout_s).topics.get(self.topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise LookupError(f"topic {self.topic!r} does not exist (create it with `tickcast topics create`)")
        return sorted(metadata.partitions)

    def _committed(self, partitions: list[int]) -> dict[int, int | None]:
        request = ConsumerGroupTopicPartitions(self.group, [TopicPartition(self.topic, p) for p in partitions])
        futures = self._admin.list_consumer_group_offsets([request], request_timeout=self.timeout_s)
        result = futures[self.group].result()
        return {tp.partition: tp.offset for tp in result.topic_partitions if tp.topic == self.topic and not tp.error}

    def _owners_from_group(self) -> dict[int, str]:
        try:
            described = self._admin.describe_consumer_groups([self.group], request_timeout=self.timeout_s)
            group = described[self.group].result()
        except KafkaException as exc:
            log.debug("describe_group_failed", group=self.group, error=str(exc))
            return {}
        members = [
            (
                # Faust gives every worker the same client id; the member id is what tells them apart.
                f"{m.member_id}@{str(m.host).lstrip('/')}",
                [(tp.topic, tp.partition) for tp in (m.assignment.topic_partitions if m.assignment else [])],
            )
            for m in group.members
        ]
        return owners_from_assignments(members, self.topic)
