"""A TCP relay that keeps what clients sent: to see, on the wire, which SASL mechanism and user a client offered.

SCRAM's first client message carries the user name in clear (``n,,n=<user>,r=<nonce>``) and never the
password, so a test can check both from what the relay saw.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress
from types import TracebackType

from tickcast.common.processes import free_port


class RecordingRelay:
    """Forwards every connection on ``host:port`` to ``target`` both ways; :attr:`sent` is what clients sent.

    Usage::

        with RecordingRelay(broker.bootstrap_servers) as relay:
            ...  # clients dial relay.address
            assert b"n=alice," in relay.sent
    """

    def __init__(self, target: str, host: str = "127.0.0.1", port: int = 0) -> None:
        target_host, _, target_port = target.rpartition(":")
        self.target = (target_host, int(target_port))
        self.host = host
        self.port = port or free_port(host)
        self._sent = bytearray()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def sent(self) -> bytes:
        """Everything clients sent so far, all connections concatenated."""
        with self._lock:
            return bytes(self._sent)

    def start(self) -> RecordingRelay:
        listener = socket.create_server((self.host, self.port))
        self._listener = listener
        self._spawn(self._accept, listener)
        return self

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream, True)
            self._spawn(self._pump, upstream, client, False)

    def _pump(self, source: socket.socket, sink: socket.socket, record: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if record:
                    with self._lock:
                        self._sent += chunk
                sink.sendall(chunk)
        except OSError:
            pass  # either side closed
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            with suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept() (Linux)
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> RecordingRelay:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
