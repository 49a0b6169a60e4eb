"""The SSE load's lean reader: plain non-blocking sockets on one epoll object, each read stamped by the kernel.

Every socket has ``SO_TIMESTAMPNS`` on, so ``recvmsg`` returns with each read the wall-clock time the kernel
received its (last) bytes: the event's receipt as another machine would see it, which no wait of this process
for a core can move. The read time (``time.time()`` after ``recvmsg``) is kept beside it; the difference is
the load's own lag, the share of a read-time delay that the load, not the gateway, is to blame for.

No event loop, no protocol objects, no futures: a read is one ``epoll`` entry, one ``recvmsg`` and one list
append, and nothing (not even the control messages) is parsed until the window ends.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from dataclasses import dataclass, field

#: Linux's ``SO_TIMESTAMPNS`` (also the ``SCM_TIMESTAMPNS`` control message type); Python names neither.
SO_TIMESTAMPNS = 35
#: ``struct timespec`` on 64-bit Linux: seconds and nanoseconds.
_TIMESPEC = struct.Struct("qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
#: Bytes per read: a backlog of several events comes in one read, as the asyncio reader's did.
READ_SIZE = 65536
#: A chunk as read: ``recvmsg``'s control messages, the read time (ms, this clock) and its bytes.
Read = tuple[list[tuple[int, int, bytes]], float, bytes]
#: A chunk as read: the kernel's receipt time (ms), the read time (ms, this clock) and its bytes.
Stamped = tuple[float, float, bytes]


def kernel_ms(ancillary: list[tuple[int, int, bytes]], default: float) -> float:
    """The kernel's receipt time (ms) in ``recvmsg``'s control messages, or ``default`` if there is none.

    >>> kernel_ms([(socket.SOL_SOCKET, SO_TIMESTAMPNS, _TIMESPEC.pack(12, 500_000_000))], 0.0)
    12500.0
    >>> kernel_ms([], 7.0)
    7.0
    """
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return float(seconds * 1000 + nanoseconds / 1e6)
    return default


@dataclass
class Streams:
    """The load's open sockets on one epoll object, each with the list its reads go to."""

    epoll: select.epoll = field(default_factory=select.epoll)
    by_fd: dict[int, tuple[socket.socket, list[Read]]] = field(default_factory=dict)
    failed: int = 0

    def close(self, fd: int) -> None:
        sock, _ = self.by_fd.pop(fd)
        self.epoll.unregister(fd)
        sock.close()


def open_streams(host: str, port: int, requests: list[bytes], received: list[list[Read]]) -> Streams:
    """Connect every client, send its request, and register its socket for reads (``failed`` counts the rest)."""
    streams = Streams()
    for request, chunks in zip(requests, received, strict=True):
        try:
            sock = socket.create_connection((host, port), timeout=30)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.sendall(request)
        except OSError:
            streams.failed += 1
            continue
        sock.setblocking(False)
        streams.epoll.register(sock.fileno(), select.EPOLLIN)
        streams.by_fd[sock.fileno()] = (sock, chunks)
    return streams


def read_until(streams: Streams, until: float) -> dict[int, float]:
    """Read every socket until ``until`` (monotonic) or until every one is closed, appending each read as it
    came (its control messages undecoded: :func:`stamped` does that after the window); then close them all.
    Returns when each socket first read something (monotonic), by file descriptor."""
    first: dict[int, float] = {}
    by_fd, poll, clock = streams.by_fd, streams.epoll.poll, time.time
    while by_fd and (left := until - time.monotonic()) > 0:
        for fd, _ in poll(left):
            sock, chunks = by_fd[fd]
            try:
                data, ancillary, _, _ = sock.recvmsg(READ_SIZE, _ANCILLARY)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                streams.close(fd)
                continue
            if not chunks:
                first[fd] = time.monotonic()
            chunks.append((ancillary, clock() * 1000.0, data))
    for fd in list(by_fd):
        streams.close(fd)
    streams.epoll.close()
    return first


def stamped(chunks: list[Read]) -> list[Stamped]:
    """Reads as the kernel's receipt time (ms; the read time where the kernel gave none), read time and bytes.

    >>> stamped([([(socket.SOL_SOCKET, SO_TIMESTAMPNS, _TIMESPEC.pack(1, 0))], 1001.5, b"x"), ([], 7.0, b"y")])
    [(1000.0, 1001.5, b'x'), (7.0, 7.0, b'y')]
    """
    return [(kernel_ms(ancillary, read_ms), read_ms, data) for ancillary, read_ms, data in chunks]
