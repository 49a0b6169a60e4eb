"""Who may read predictions: bearer tokens of named clients, from a file that ops change without a restart.

The file (``TICKCAST_GATEWAY_CLIENTS_FILE``, a Kubernetes Secret mounted as a volume) holds one client per
line: a name and the SHA-256 (hex) of its token, so no token is ever stored. ``#`` starts a comment.
``tickcast gateway-client NAME`` makes a token and its line. :class:`Clients` re-reads the file when its
inode, size or mtime changes (checked at most once a second by :meth:`Clients.refresh`); a file that does
not parse on reload leaves the last good one in force, and a client whose line went away (or whose token
changed) is refused from the next request on; the gateway closes its open streams at the same check.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("tickcast.gateway")

#: A client's name: it becomes a metric label and a log field, so short and plain.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
#: The file's state is looked at no more often than this (s): a stat per second is nothing, per request is not.
CHECK_EVERY_S = 1.0
#: Longest Authorization header read; a longer one is refused unread.
MAX_HEADER_BYTES = 1024
_BEARER = b"bearer "
#: Leading bytes of a digest that index it; the whole digest is then compared in constant time.
_INDEX_BYTES = 8


class ClientsFileError(ValueError):
    """The clients file is missing, unreadable or malformed; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused (a bounded ``reason`` for metrics, a ``detail`` for the client)."""

    reason: str
    detail: str


MISSING = Refusal("missing", "this gateway wants 'Authorization: Bearer <token>'")
MALFORMED = Refusal("malformed", "the Authorization header is not 'Bearer <token>'")
UNKNOWN = Refusal("unknown", "the bearer token is not one this gateway knows (wrong, or revoked)")


def token_digest(token: bytes) -> bytes:
    """The SHA-256 of a token, as the file stores it (in hex).

    >>> token_digest(b"t0ken").hex()[:16]
    'b46c09677343261f'
    """
    return hashlib.sha256(token).digest()


def client_line(name: str, token: str) -> str:
    """The clients-file line of ``name`` with ``token``.

    >>> client_line("desk-1", "t0ken")
    'desk-1 b46c09677343261f0b439a472422225e3a230c9c094d6ab16762e2036b597053'
    """
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"client name {name[:80]!r} must match {NAME_PATTERN.pattern}")
    return f"{name} {token_digest(token.encode()).hex()}"


def parse_clients(text: str, where: str) -> dict[bytes, str]:
    """Token digest -> client name, from the file's text; raises :class:`ClientsFileError` naming the line.

    >>> clients = parse_clients("# trading desks\\ndesk-1 " + "ab" * 32 + "  # since May\\n\\n", "f")
    >>> [(name, digest.hex()[:8]) for digest, name in clients.items()]
    [('desk-1', 'abababab')]
    >>> parse_clients("desk-1 s3cret", "/etc/clients")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tickcast.gateway.auth.ClientsFileError: /etc/clients line 1: want 'NAME SHA256-HEX' ...
    """
    clients: dict[bytes, str] = {}
    names: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or not _DIGEST.fullmatch(parts[1]):
            raise ClientsFileError(
                f"{where} line {number}: want 'NAME SHA256-HEX' (64 lowercase hex digits: the token's digest,"
                " never the token)"
            )
        name, digest = parts[0], bytes.fromhex(parts[1])
        if not NAME_PATTERN.fullmatch(name):
            raise ClientsFileError(f"{where} line {number}: client name must match {NAME_PATTERN.pattern}")
        if name in names:
            raise ClientsFileError(f"{where} line {number}: client {name!r} named twice")
        twin = next((other for known, other in clients.items() if known[:_INDEX_BYTES] == digest[:_INDEX_BYTES]), None)
        if twin is not None:
            raise ClientsFileError(f"{where} line {number}: the same token digest as client {twin!r}")
        clients[digest] = name
        names.add(name)
    return clients


def _index(by_digest: dict[bytes, str]) -> dict[bytes, tuple[bytes, str]]:
    return {digest[:_INDEX_BYTES]: (digest, name) for digest, name in by_digest.items()}


#: The stamp of a file that cannot be looked at (gone, or its directory unreadable).
_GONE = (-1, -1, -1, -1)


def _stamp(path: Path) -> tuple[int, int, int, int]:
    # Through the symlinks a Secret volume swaps on update: a new file is a new inode.
    state = os.stat(path)
    return state.st_dev, state.st_ino, state.st_size, state.st_mtime_ns


class Clients:
    """The clients a gateway accepts, kept in step with their file.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "clients"
    ...     _ = path.write_text(client_line("desk-1", "t0ken-t0ken") + "\\n")
    ...     clients = Clients.load(path)
    ...     clients.check(b"Bearer t0ken-t0ken"), clients.check(b"Bearer nope").reason, clients.check(None).reason
    ('desk-1', 'unknown', 'missing')
    """

    def __init__(self, path: Path, by_digest: dict[bytes, str], stamp: tuple[int, int, int, int]) -> None:
        self.path = path
        self._by_digest = by_digest
        self._index = _index(by_digest)
        self._stamp = stamp
        self._checked_at = float("-inf")
        #: Bumped at every reload that changed who is accepted: caches of accepted headers compare it.
        self.generation = 0

    @classmethod
    def load(cls, path: Path) -> Clients:
        """Read ``path``; :class:`ClientsFileError` (one line naming the file) if it cannot be used."""
        try:
            stamp = _stamp(path)
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ClientsFileError(f"TICKCAST_GATEWAY_CLIENTS_FILE {path}: {exc}") from None
        clients = cls(path, parse_clients(text, str(path)), stamp)
        if not clients.names:
            log.warning("gateway_clients_none", path=str(path), detail="every request to /v1 will be refused")
        return clients

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._by_digest.values())

    def check(self, header: bytes | None) -> str | Refusal:
        """The client's name if ``header`` (an Authorization value) carries a known token, else why not.

        The presented token is hashed; the entry is found by the digest's first bytes and the whole digests
        are compared with ``hmac.compare_digest``. The lookup's timing depends only on the digest of what the
        caller sent, which says nothing about any stored token.
        """
        if header is None:
            return MISSING
        if len(header) > MAX_HEADER_BYTES or header[:7].lower() != _BEARER:
            return MALFORMED
        token = header[7:].strip()
        if not token:
            return MALFORMED
        return self._lookup(token_digest(token)) or UNKNOWN

    def _lookup(self, digest: bytes) -> str | None:
        entry = self._index.get(digest[:_INDEX_BYTES])
        if entry is None or not hmac.compare_digest(entry[0], digest):
            return None
        return entry[1]

    def accepts(self, digest: bytes | None) -> bool:
        """Whether the token of this digest is still accepted (for streams opened with it)."""
        return digest is not None and self._lookup(digest) is not None

    def digest_of(self, header: bytes) -> bytes:
        """The digest of the token in an Authorization header already accepted by :meth:`check`."""
        return token_digest(header[7:].strip())

    def refresh(self, now: float) -> bool:
        """Re-read the file if it changed (looked at once per :data:`CHECK_EVERY_S`); True if who is accepted
        changed. A file that cannot be read or parsed is logged and the last good one stays in force."""
        if now - self._checked_at < CHECK_EVERY_S:
            return False
        self._checked_at = now
        try:
            stamp, problem = _stamp(self.path), ""
        except OSError as exc:
            stamp, problem = _GONE, str(exc)
        if stamp == self._stamp:
            return False
        # From here on this state of the file is seen: a bad one is reported once, not every second.
        self._stamp = stamp
        try:
            if stamp == _GONE:
                raise ClientsFileError(problem)
            by_digest = parse_clients(self.path.read_text(encoding="utf-8"), str(self.path))
        except (OSError, UnicodeDecodeError, ClientsFileError) as exc:
            log.error("gateway_clients_file_invalid", path=str(self.path), error=str(exc), kept=len(self._by_digest))
            return False
        if by_digest == self._by_digest:
            return False
        before, after = self.names, frozenset(by_digest.values())
        self._by_digest, self._index = by_digest, _index(by_digest)
        self.generation += 1
        log.info(
            "gateway_clients_reloaded",
            path=str(self.path),
            clients=len(after),
            added=sorted(after - before),
            removed=sorted(before - after),
        )
        return True
