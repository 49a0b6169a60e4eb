"""The rules for snapshot keys: long enough not to be guessed, never a placeholder that shipped in a file.

A snapshot is a pickle, and a worker unpickles any snapshot whose HMAC checks
out: whoever holds the key (and can write to the snapshots topic) can run code
in every worker. So a key shorter than :data:`MIN_KEY_BYTES`, or one of the
placeholders tickcast's own files once carried, is refused when the settings
load, before anything is read or signed.

Rotation: snapshots are signed with ``TICKCAST_SNAPSHOT_KEY`` and verified with
it or any of ``TICKCAST_SNAPSHOT_PREVIOUS_KEYS`` (comma-separated), so a new key
can be rolled out without losing state (see :func:`split_keys`).
"""

from __future__ import annotations

import secrets

#: 256 bits: what HMAC-SHA256 can use, and what ``openssl rand -hex 32`` or :func:`new_key` gives (as 64 chars).
MIN_KEY_BYTES = 32
#: Values that were written in tickcast's manifests, compose file or bench: public, so never a key.
PLACEHOLDER_KEYS = frozenset(
    {
        "change-me-to-a-long-random-secret",
        "compose-demo-key-change-me",
        "bench-snapshot-key",
    }
)
#: Words that mark a value as a stand-in someone meant to replace (or a template nobody filled in).
PLACEHOLDER_WORDS = ("change-me", "changeme", "replace-me", "placeholder", "example", "${")


def key_problem(key: str) -> str | None:
    """Why ``key`` must not sign snapshots, or None if it may; the key itself is never part of the answer.

    >>> key_problem(new_key()) is None
    True
    >>> key_problem("k")
    'is 1 bytes; a snapshot key needs at least 32 (generate one: openssl rand -hex 32)'
    >>> key_problem("change-me-to-a-long-random-secret")
    'is a documented placeholder, known to anyone who read the repository (generate one: openssl rand -hex 32)'
    """
    hint = "(generate one: openssl rand -hex 32)"
    lowered = key.strip().lower()
    if lowered in PLACEHOLDER_KEYS or any(word in lowered for word in PLACEHOLDER_WORDS):
        return f"is a documented placeholder, known to anyone who read the repository {hint}"
    size = len(key.encode("utf-8"))
    if size < MIN_KEY_BYTES:
        return f"is {size} bytes; a snapshot key needs at least {MIN_KEY_BYTES} {hint}"
    return None


def split_keys(value: str) -> list[str]:
    """The keys of a comma-separated list, blanks dropped (keys are hex or base64: no commas in them).

    >>> split_keys(" a, ,b ")
    ['a', 'b']
    """
    return [key.strip() for key in value.split(",") if key.strip()]


def new_key() -> str:
    """A fresh random key that passes :func:`key_problem` (64 hex characters), for demos, tests and the bench.

    >>> len(new_key()), new_key() != new_key()
    (64, True)
    """
    return secrets.token_hex(MIN_KEY_BYTES)
