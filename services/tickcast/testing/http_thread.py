"""An ASGI app served by a real uvicorn in a thread of this process, and raw HTTP/1.1 over a socket to it.

For tests of what only a real server shows (the bytes on the wire, keep-alive, pipelining, disconnects),
without a child process: the app's state stays reachable from the test.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import anyio
import uvicorn

from tickcast.testing.waiting import wait_for


@contextmanager
def serving(
    app: Any,
    http: type[asyncio.Protocol] | str = "httptools",
    keep_alive_s: int = 5,
    tls: ssl.SSLContext | None = None,
) -> Iterator[uvicorn.Server]:
    """``app`` on a free loopback port with the HTTP protocol ``http`` (HTTPS with ``tls``), until the block ends."""
    # The first file answer (the dashboard's page) imports anyio's file module lazily. Under pytest that import is
    # rewritten (ast.parse) in the server's thread, and on CPython 3.11.7 two threads parsing at once can fail
    # with "SystemError: AST constructor recursion depth mismatch": imported here, on the caller's thread.
    anyio.open_file  # noqa: B018
    secure: dict[str, Any] = {} if tls is None else {"ssl_context_factory": lambda config, default: tls}
    config = uvicorn.Config(
        app, http=http, log_level="warning", access_log=False, timeout_keep_alive=keep_alive_s, **secure
    )
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 10, "uvicorn to start")
        yield server
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def port_of(server: uvicorn.Server) -> int:
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return port


def loop_of(server: uvicorn.Server) -> asyncio.AbstractEventLoop:
    """The server's event loop: what runs on it from a test goes through ``call_soon_threadsafe``."""
    return server.servers[0].get_loop()


def read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    """The status line and headers of an answer, and whatever of its body came with them (for streams)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def read_answer(reader: BinaryIO, head_only: bool = False) -> bytes:
    """One whole answer with a Content-Length (none for a 304; ``head_only`` for a HEAD), from a buffered
    reader of the connection (``conn.makefile("rb")``), so pipelined answers are read one at a time.

    >>> import io
    >>> ok = b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok"
    >>> not_modified = b"HTTP/1.1 304 Not Modified\\r\\n\\r\\n"
    >>> reader = io.BytesIO(ok + not_modified)
    >>> read_answer(reader), read_answer(reader)
    (b'HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok', b'HTTP/1.1 304 Not Modified\\r\\n\\r\\n')
    """
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline()
        if not line:
            return head
        head += line
    length = re.search(rb"content-length: (\d+)", head)
    return head + reader.read(int(length[1]) if length and not head_only else 0)


def get(path: str, *headers: str, version: str = "1.1") -> bytes:
    """A raw GET request.

    >>> get("/x", "A: b")
    b'GET /x HTTP/1.1\\r\\nHost: test\\r\\nA: b\\r\\n\\r\\n'
    """
    return "\r\n".join([f"GET {path} HTTP/{version}", "Host: test", *headers, "", ""]).encode()
