"""The worker's consumer hands batch topics' records over as aiokafka decoded them, and skips what aiokafka skips.

faust_tuning overrides only aiokafka's record construction (``PartitionRecords._consumer_record``). These tests
run aiokafka's own fetch-side parsing on real record batches (transactional, aborted, control, CRC-corrupted,
fetched from inside a batch) twice, once as a plain consumer and once as the worker's consumer, and compare.
"""

from __future__ import annotations

import asyncio
import struct
import uuid
from typing import Any

import pytest
from aiokafka.consumer.fetcher import READ_COMMITTED, PartitionRecords
from aiokafka.errors import CorruptRecordException
from aiokafka.record.control_record import ABORT_MARKER, COMMIT_MARKER, ControlRecord
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import ConsumerRecord, TopicPartition

from tickcast.predictor.faust_tuning import TunedApp

READ_UNCOMMITTED = 0
TICKS = TopicPartition("ticks", 3)
OTHER = TopicPartition("other", 3)
CONTROL_BIT = 0x20
CRC_AT = struct.calcsize(">qiib")  # v2 batch header: base offset, length, leader epoch, magic, then the CRC
ATTRIBUTES = CRC_AT + 4  # the CRC covers everything from the attributes on


def batch(base_offset: int, count: int, producer_id: int = -1, control: ControlRecord | None = None) -> bytes:
    """One v2 record batch at ``base_offset``; transactional when ``producer_id`` is set, a marker with ``control``."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=producer_id >= 0,
        producer_id=producer_id,
        producer_epoch=0 if producer_id >= 0 else -1,
        base_sequence=0 if producer_id >= 0 else -1,
        batch_size=1 << 20,
    )
    for i in range(count):
        offset = base_offset + i
        if control is None:
            key, value, headers = b"S%d" % (offset % 3), b"v%d" % offset, [("h", b"%d" % offset)]
        else:
            key, value, headers = struct.pack(">hh", control.version, control.type_), b"", []
        builder.append(i, timestamp=1_700_000_000_000 + offset, key=key, value=value, headers=headers)
    raw = bytearray(builder.build())
    raw[:8] = struct.pack(">q", base_offset)  # the broker assigns it; not covered by the CRC
    if control is not None:
        (attributes,) = struct.unpack_from(">h", raw, ATTRIBUTES)
        struct.pack_into(">h", raw, ATTRIBUTES, attributes | CONTROL_BIT)
        struct.pack_into(">I", raw, CRC_AT, calc_crc32c(bytes(raw[ATTRIBUTES:])))
    return bytes(raw)


#: offsets 0-2 aborted by producer 7 (marker at 3), 4-6 plain, 7-8 committed by producer 8 (marker at 9), 10-12.
BATCHES = [
    batch(0, 3, producer_id=7),
    batch(3, 1, producer_id=7, control=ABORT_MARKER),
    batch(4, 3),
    batch(7, 2, producer_id=8),
    batch(9, 1, producer_id=8, control=COMMIT_MARKER),
    batch(10, 3),
]
LOG = b"".join(BATCHES)
#: What a fetch at offset 5 brings: the log from the batch that holds offset 5.
LOG_FROM_5 = b"".join(BATCHES[2:])
ABORTED = [(7, 0)]


def worker_key_deserializer() -> Any:
    """The key deserializer the worker's aiokafka consumer is built with, "ticks" being a batch topic."""
    app = TunedApp(f"records-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1")

    async def handle(tp: Any, records: Any) -> None: ...

    app.drain_in_batches("ticks", handle)

    async def build() -> Any:
        return app.consumer._thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]

    return asyncio.run(build())._key_deserializer


WORKER = worker_key_deserializer()


def read(tp: TopicPartition, log: bytes, fetch_offset: int, isolation: int, key_deserializer: Any) -> Any:
    records = PartitionRecords(
        tp, MemoryRecords(log), list(ABORTED), fetch_offset, key_deserializer, None, True, isolation
    )
    return list(records), records.next_fetch_offset


def fields(record: Any) -> tuple[Any, ...]:
    return record.offset, record.timestamp, record.timestamp_type, record.key, record.value, list(record.headers)


@pytest.mark.parametrize("isolation", [READ_COMMITTED, READ_UNCOMMITTED], ids=["read_committed", "read_uncommitted"])
@pytest.mark.parametrize(("log", "fetch_offset"), [(LOG, 0), (LOG, 3), (LOG_FROM_5, 5), (LOG, 8), (LOG, 11), (LOG, 13)])
def test_a_batch_topic_gets_the_records_aiokafka_would_return_and_the_same_next_offset(
    isolation: int, log: bytes, fetch_offset: int
) -> None:
    expected, expected_next = read(TICKS, log, fetch_offset, isolation, None)
    got, got_next = read(TICKS, log, fetch_offset, isolation, WORKER)

    assert [fields(r) for r in got] == [fields(r) for r in expected]
    assert got_next == expected_next
    assert all(not isinstance(r, ConsumerRecord) for r in got)  # aiokafka's decoded record, no wrapper built


def test_the_shared_log_reads_as_the_scenario_says() -> None:
    committed, next_offset = read(TICKS, LOG, 0, READ_COMMITTED, WORKER)
    from_5, _ = read(TICKS, LOG_FROM_5, 5, READ_COMMITTED, WORKER)
    uncommitted, _ = read(TICKS, LOG, 0, READ_UNCOMMITTED, WORKER)

    assert [r.offset for r in committed] == [4, 5, 6, 7, 8, 10, 11, 12]  # aborted skipped, markers never records
    assert next_offset == 13
    assert [r.offset for r in from_5] == [5, 6, 7, 8, 10, 11, 12]
    assert [r.offset for r in uncommitted] == [0, 1, 2, 4, 5, 6, 7, 8, 10, 11, 12]


def test_other_topics_of_the_worker_consumer_still_get_aiokafkas_consumer_records() -> None:
    expected, _ = read(OTHER, LOG, 0, READ_COMMITTED, None)
    got, _ = read(OTHER, LOG, 0, READ_COMMITTED, WORKER)

    assert got == expected
    assert all(isinstance(r, ConsumerRecord) for r in got)


def test_a_consumer_not_built_by_the_worker_gets_consumer_records_for_every_topic() -> None:
    got, _ = read(TICKS, LOG, 0, READ_COMMITTED, None)

    assert got and all(isinstance(r, ConsumerRecord) and r.topic == "ticks" for r in got)


def test_a_corrupted_batch_is_refused_as_aiokafka_refuses_it() -> None:
    corrupt = bytearray(batch(4, 3))
    corrupt[-1] ^= 0xFF

    with pytest.raises(CorruptRecordException):
        read(TICKS, bytes(corrupt), 4, READ_COMMITTED, WORKER)


def test_the_worker_consumer_keeps_keys_as_they_are() -> None:
    assert WORKER(b"AAPL") == b"AAPL"
    assert WORKER(None) is None
