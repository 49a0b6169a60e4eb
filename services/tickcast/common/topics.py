"""Topic naming and the partitioning rule every client must share.

A symbol's ticks and its predictions must land on the same partition number,
whichever client produced them. Faust (aiokafka) and the Java client hash the
key with murmur2; confluent-kafka does the same only with
``partitioner=murmur2_random``, which :data:`PRODUCER_PARTITIONER` names.

The hash is written out here (twenty lines, no dependency) so that every service can compute a
symbol's partition without importing a Kafka client; a property test checks it against aiokafka's.
"""

from __future__ import annotations

#: librdkafka partitioner that matches the Java client and aiokafka for keyed records.
PRODUCER_PARTITIONER = "murmur2_random"

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF


def symbol_key(symbol: str) -> bytes:
    """The Kafka key of a symbol: its UTF-8 bytes, nothing else.

    >>> symbol_key("SPY")
    b'SPY'
    """
    return symbol.encode("utf-8")


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 of ``data`` as an unsigned int (the Java client's ``Utils.murmur2``).

    Values from Kafka's own unit test (``UtilsTest.testMurmur2``), as unsigned 32-bit numbers:

    >>> murmur2(b"21") == -973932308 & 0xFFFFFFFF
    True
    >>> murmur2(b"a-little-bit-long-string") == -985981536 & 0xFFFFFFFF
    True
    """
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    whole = length & ~3
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """Partition of a keyed record, as the Java client, aiokafka and librdkafka's murmur2 compute it.

    >>> [partition_for(symbol, 8) for symbol in (b"SPY", b"IBM", b"BAC", b"AIG")]
    [7, 3, 7, 0]
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions
