"""SSE event ids: the position of a stream in every partition it covers, as ``partition:offset`` pairs.

A one-symbol stream has one partition, so its id is exactly ``partition:offset``; a stream of several
symbols (or all) names every partition, ``0:41,1:17,...``. The offset is the last one the client has
been *given* (or passed over) in that partition: a reconnect with this id as ``Last-Event-ID`` resumes
at the next offset of each partition, so nothing is repeated and nothing is skipped.
"""

from __future__ import annotations

import re

#: Longest Last-Event-ID accepted: 10,000 partitions of 20-digit offsets would not fit, 1,000 do.
MAX_ID_LENGTH = 32_768
_PAIR = re.compile(r"(\d{1,5}):(-?\d{1,19})")

Positions = dict[int, int]


class BadPosition(ValueError):
    """A Last-Event-ID that is not a list of ``partition:offset`` pairs."""


def encode(positions: Positions) -> str:
    """The event id of ``positions``, partitions in ascending order.

    >>> encode({3: 40, 0: 12})
    '0:12,3:40'
    >>> encode({5: 7})
    '5:7'
    """
    return ",".join(f"{partition}:{offset}" for partition, offset in sorted(positions.items()))


def decode(text: str) -> Positions:
    """The positions of an event id; raises :class:`BadPosition` naming what is wrong.

    >>> decode("0:12,3:40")
    {0: 12, 3: 40}
    >>> decode("0:12,0:13")
    Traceback (most recent call last):
    ...
    tickcast.gateway.positions.BadPosition: partition 0 appears twice
    """
    if not text or len(text) > MAX_ID_LENGTH:
        raise BadPosition(f"expected 1 to {MAX_ID_LENGTH} characters of partition:offset pairs")
    positions: Positions = {}
    for pair in text.split(","):
        matched = _PAIR.fullmatch(pair.strip())
        if matched is None:
            raise BadPosition(f"{pair[:40]!r} is not partition:offset")
        partition, offset = int(matched[1]), int(matched[2])
        if partition in positions:
            raise BadPosition(f"partition {partition} appears twice")
        if offset < -1:
            raise BadPosition(f"offset {offset} of partition {partition} is below -1")
        positions[partition] = offset
    return positions
