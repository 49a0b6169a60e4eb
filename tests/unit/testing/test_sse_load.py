"""The SSE load's kernel-stamped reader against a plain socket server: every event counted, stamps in order."""

from __future__ import annotations

import socket
import threading
import time

from tickcast.testing.sse_load import run_kernel_clients

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"


def serve(server: socket.socket, clients: int, sent_ms: list[float]) -> None:
    """Answer ``clients`` requests with two events each (one stream over two partitions), then close."""
    for _ in range(clients):
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            now_us = int(time.time() * 1e6)
            sent_ms.append(now_us / 1000.0)
            events = b"".join(
                b'id: 0:%d,1:4\nevent: prediction\ndata: {"predicted_at":%d}\n\n' % (offset, now_us)
                for offset in (7, 8)
            )
            conn.sendall(HEAD + events)


def test_kernel_reader_counts_every_event_with_its_receipt_before_its_read() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    sent_ms: list[float] = []
    thread = threading.Thread(target=serve, args=(server, 3, sent_ms), daemon=True)
    thread.start()
    share = run_kernel_clients(f"http://127.0.0.1:{port}", ["/v1/stream?symbols=A,B"] * 3, time.monotonic() + 30)
    thread.join(5)
    server.close()
    assert (share.connected, share.failed, share.out_of_order) == (3, 0, 0)
    assert len(share.delays) == len(share.read_delays) == 6
    # The kernel stamps the bytes' arrival: after they were sent, never after this process read them.
    assert all(delay >= -1.0 for delay in share.delays)
    assert all(lag >= 0.0 for lag in share.lags) and share.lags
    assert all(read >= kernel for read, kernel in zip(share.read_delays, share.delays, strict=True))
