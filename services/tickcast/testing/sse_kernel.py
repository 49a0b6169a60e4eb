"""The SSE load's lean reader: plain non-blocking sockets on one epoll selector, each read stamped by the kernel.

Every socket has ``SO_TIMESTAMPNS`` on, so ``recvmsg`` returns with each read the wall-clock time the kernel
received its (last) bytes: the event's receipt as another machine would see it, which no wait of this process
for a core can move. The read time (``time.time()`` after ``recvmsg``) is kept beside it; the difference is
the load's own lag, the share of a read-time delay that the load, not the gateway, is to blame for.

No event loop, no protocol objects, no futures: a read is one ``select`` entry, one ``recvmsg`` and one list
append, and nothing is parsed until the window ends.
"""

from __future__ import annotations

import selectors
import socket
import struct
import time

#: Linux's ``SO_TIMESTAMPNS`` (also the ``SCM_TIMESTAMPNS`` control message type); Python names neither.
SO_TIMESTAMPNS = 35
#: ``struct timespec`` on 64-bit Linux: seconds and nanoseconds.
_TIMESPEC = struct.Struct("qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
#: Bytes per read: a backlog of several events comes in one read, as the asyncio reader's did.
READ_SIZE = 65536
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


def open_streams(
    host: str, port: int, requests: list[bytes], received: list[list[Stamped]]
) -> tuple[selectors.EpollSelector, int]:
    """Connect every client, send its request, and register its socket for reads; and how many failed."""
    selector = selectors.EpollSelector()
    failed = 0
    for request, chunks in zip(requests, received, strict=True):
        try:
            sock = socket.create_connection((host, port), timeout=30)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.sendall(request)
        except OSError:
            failed += 1
            continue
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, chunks)
    return selector, failed


def read_until(selector: selectors.EpollSelector, until: float) -> dict[int, float]:
    """Read every registered socket until ``until`` (monotonic) or until every one is closed, appending each
    read to its list; then close them all. Returns when each socket first read something (monotonic), by file
    descriptor."""
    first: dict[int, float] = {}
    while selector.get_map() and (left := until - time.monotonic()) > 0:
        for key, _ in selector.select(left):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]  # only sockets are registered
            try:
                data, ancillary, _, _ = sock.recvmsg(READ_SIZE, _ANCILLARY)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            read_ms = time.time() * 1000.0
            if not data:
                selector.unregister(sock)
                sock.close()
                continue
            if key.fd not in first:
                first[key.fd] = time.monotonic()
            key.data.append((kernel_ms(ancillary, read_ms), read_ms, data))
    for key in list(selector.get_map().values()):
        selector.unregister(key.fileobj)
        key.fileobj.close()  # type: ignore[union-attr]  # only sockets are registered
    selector.close()
    return first
