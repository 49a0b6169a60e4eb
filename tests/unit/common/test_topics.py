"""The partitioning rule must agree with the clients that produce and consume: aiokafka (Faust) and Java."""

from __future__ import annotations

from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from tickcast.common.topics import murmur2, partition_for


@given(st.binary(max_size=64))
def test_murmur2_agrees_with_aiokafka_on_any_bytes(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data) & 0xFFFFFFFF


@given(st.text(min_size=1, max_size=32), st.integers(min_value=1, max_value=1000))
def test_partition_for_agrees_with_aiokafka_default_partitioner(symbol: str, partitions: int) -> None:
    key = symbol.encode("utf-8")
    assert partition_for(key, partitions) == (aiokafka_murmur2(key) & 0x7FFFFFFF) % partitions


def test_common_needs_no_kafka_client_library() -> None:
    import subprocess
    import sys

    # A fresh interpreter, so modules imported by other tests don't count.
    code = (
        "import sys, tickcast.common.topics, tickcast.common.records, tickcast.common.validation, "
        "tickcast.common.contracts.codec; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'aiokafka', 'faust', 'kafka'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"tickcast.common pulled in Kafka client modules: {out}"
