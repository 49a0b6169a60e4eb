"""HTTPS served by the gateway itself: its certificate chain and key, checked at start, reloaded when they change.

With ``TICKCAST_GATEWAY_TLS_CERT_FILE`` and ``TICKCAST_GATEWAY_TLS_KEY_FILE`` (a Kubernetes TLS Secret mounted
as a volume) the gateway speaks only HTTPS on its port: bearer tokens then never cross the network in clear,
without a proxy in front. :func:`load_tls` reads both files once at start; a file that is missing, unreadable
or not what it should be stops the gateway with one line naming the setting and the file
(:class:`TlsFileError`).

Renewal without a restart: :meth:`ServerTls.refresh` looks at the files' inode, size and mtime at most once
a second and, when they changed, loads them into a new ``SSLContext`` that every later handshake is moved to;
connections already open keep the certificate they were opened with. A renewal that cannot be loaded (a
half-written pair, the key of another certificate) is logged and the last good certificate stays in force.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from tickcast.gateway.settings import GatewaySettings

log = structlog.get_logger("tickcast.gateway")

#: The files' state is looked at no more often than this (s), like the clients file's.
CHECK_EVERY_S = 1.0
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_GONE = (-1, -1, -1, -1)


class TlsFileError(ValueError):
    """A certificate, key or password file the gateway cannot use; one line naming the setting and the file."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The files of one certificate: chain, key, and the key's password (if the key is encrypted)."""

    cert: Path
    key: Path
    password: Path | None = None

    def stamp(self) -> tuple[tuple[int, int, int, int], ...]:
        """Device, inode, size and mtime of each file, through symlinks (a Secret volume swaps a link on update);
        all -1 for a file that cannot be looked at.

        >>> TlsFiles(Path("/nonexistent/tls.crt"), Path("/nonexistent/tls.key")).stamp()
        ((-1, -1, -1, -1), (-1, -1, -1, -1))
        """
        return tuple(_stamp(path) for path in (self.cert, self.key, self.password) if path is not None)


def _stamp(path: Path) -> tuple[int, int, int, int]:
    try:
        state = os.stat(path)
    except OSError:
        return _GONE
    return state.st_dev, state.st_ino, state.st_size, state.st_mtime_ns


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsFileError(f"TICKCAST_{setting} {path}: {exc.strerror or exc}") from None


def load_chain(context: ssl.SSLContext, files: TlsFiles) -> None:
    """Load ``files`` into ``context``; :class:`TlsFileError` names the setting and the file at fault.

    >>> load_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), TlsFiles(Path("/nonexistent/tls.crt"), Path("k")))
    Traceback (most recent call last):
    ...
    tickcast.gateway.tls.TlsFileError: TICKCAST_GATEWAY_TLS_CERT_FILE /nonexistent/tls.crt: No such file or directory
    """
    _read("GATEWAY_TLS_CERT_FILE", files.cert)
    _read("GATEWAY_TLS_KEY_FILE", files.key)
    password = None
    if files.password is not None:
        # A mounted Secret's value usually ends with a newline that is not part of the password.
        password = _read("GATEWAY_TLS_KEY_PASSWORD_FILE", files.password).rstrip(b"\r\n")
    try:
        # Parsed on its own first, so that a file that holds no certificate is named as such.
        ssl.create_default_context(cafile=str(files.cert))
    except ssl.SSLError as exc:
        raise TlsFileError(
            f"TICKCAST_GATEWAY_TLS_CERT_FILE {files.cert}: no PEM certificate in it ({exc.reason or exc})"
        ) from None
    except OSError as exc:
        raise _changed(f"TICKCAST_GATEWAY_TLS_CERT_FILE {files.cert}", exc) from None

    def no_password() -> bytes:
        # Without this, OpenSSL would ask for the password on the terminal, and a container would hang there.
        raise TlsFileError(
            f"TICKCAST_GATEWAY_TLS_KEY_FILE {files.key}: the key is encrypted; "
            "set TICKCAST_GATEWAY_TLS_KEY_PASSWORD_FILE"
        )

    try:
        context.load_cert_chain(files.cert, files.key, password if password is not None else no_password)
    except ssl.SSLError as exc:
        why = "its key is another certificate's" if exc.reason == "KEY_VALUES_MISMATCH" else "no usable PEM private key"
        if password is not None and exc.reason != "KEY_VALUES_MISMATCH":
            why += " (or the password in TICKCAST_GATEWAY_TLS_KEY_PASSWORD_FILE is wrong)"
        raise TlsFileError(
            f"TICKCAST_GATEWAY_TLS_KEY_FILE {files.key}: {why} for TICKCAST_GATEWAY_TLS_CERT_FILE {files.cert}"
        ) from None
    except OSError as exc:
        raise _changed(
            f"TICKCAST_GATEWAY_TLS_KEY_FILE {files.key} or TICKCAST_GATEWAY_TLS_CERT_FILE {files.cert}", exc
        ) from None


def _changed(named: str, exc: OSError) -> TlsFileError:
    # Read above, yet gone or unreadable when OpenSSL opens it: the files changed in between (a renewal that
    # deletes before it writes). Anything but a TlsFileError would end the gateway's renewal watcher for good.
    return TlsFileError(f"{named}: {exc.strerror or exc} (changed while it was loaded)")


class ServerTls:
    """The gateway's server ``SSLContext`` and the files it came from, reloaded by :meth:`refresh`.

    The context uvicorn listens with stays the same object for the server's life; a renewal is loaded into a
    new context, and each handshake is moved onto the newest one by the SNI callback (called for every
    ClientHello, with or without a server name). Loading into the listening context itself would leave it
    broken by a renewal whose key does not fit: OpenSSL replaces the certificate before it checks the key.

    >>> import tempfile, trustme
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     issued = trustme.CA().issue_cert("127.0.0.1")
    ...     files = TlsFiles(Path(tmp) / "tls.crt", Path(tmp) / "tls.key")
    ...     issued.cert_chain_pems[0].write_to_path(str(files.cert))
    ...     issued.private_key_pem.write_to_path(str(files.key))
    ...     tls = ServerTls(files)
    ...     tls.refresh(now=0.0), tls.loads, sorted(tls.uvicorn_options())
    (False, 1, ['ssl_context_factory'])
    """

    def __init__(self, files: TlsFiles, minimum_version: str = "1.2") -> None:
        self.files = files
        self._minimum = _VERSIONS[minimum_version]
        self._stamp = files.stamp()
        self.context = self._new_context()
        self._serving = self.context
        self.context.sni_callback = self._pick
        self._checked_at = float("-inf")
        #: Certificates loaded since start (1 = the first one).
        self.loads = 1

    def _new_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self._minimum
        load_chain(context, self.files)
        return context

    def _pick(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, context: ssl.SSLContext
    ) -> None:
        serving = self._serving
        if serving is not context:
            connection.context = serving

    def refresh(self, now: float) -> bool:
        """Load the files again if they changed (looked at once per :data:`CHECK_EVERY_S`); True if loaded."""
        if now - self._checked_at < CHECK_EVERY_S:
            return False
        self._checked_at = now
        stamp = self.files.stamp()
        if stamp == self._stamp:
            return False
        # From here on this state of the files is seen: a bad renewal is reported once, not every second.
        self._stamp = stamp
        try:
            self._serving = self._new_context()
        except TlsFileError as exc:
            log.error("gateway_tls_reload_failed", error=str(exc), detail="the last good certificate stays in force")
            return False
        self.loads += 1
        log.info("gateway_tls_reloaded", cert=str(self.files.cert), loads=self.loads)
        return True

    def uvicorn_options(self) -> dict[str, Any]:
        """``uvicorn.Config`` keywords that serve with this context (uvicorn then reports ``https``)."""
        return {"ssl_context_factory": lambda config, default: self.context}


def load_tls(settings: GatewaySettings) -> ServerTls | None:
    """The gateway's TLS, or None when the settings name no certificate; :class:`TlsFileError` if unusable.

    >>> load_tls(GatewaySettings()) is None
    True
    """
    if settings.gateway_tls_cert_file is None or settings.gateway_tls_key_file is None:
        return None
    files = TlsFiles(
        settings.gateway_tls_cert_file, settings.gateway_tls_key_file, settings.gateway_tls_key_password_file
    )
    return ServerTls(files, settings.gateway_tls_min_version)
