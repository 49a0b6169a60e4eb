"""Topic naming and the partitioning rule every client must share.

A symbol's ticks and its predictions must land on the same partition number,
whichever client produced them. Faust (aiokafka) and the Java client hash the
key with murmur2; confluent-kafka does the same only with
``partitioner=murmur2_random``, which :data:`PRODUCER_PARTITIONER` names.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

#: librdkafka partitioner that matches the Java client and aiokafka for keyed records.
PRODUCER_PARTITIONER = "murmur2_random"


def symbol_key(symbol: str) -> bytes:
    """The Kafka key of a symbol: its UTF-8 bytes, nothing else.

    >>> symbol_key("SPY")
    b'SPY'
    """
    return symbol.encode("utf-8")


def partition_for(key: bytes, partitions: int) -> int:
    """Partition of a keyed record, as the Java client, aiokafka and librdkafka's murmur2 compute it.

    >>> partition_for(b"SPY", 8) == partition_for(b"SPY", 8)
    True
    >>> 0 <= partition_for(b"IBM", 8) < 8
    True
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions
