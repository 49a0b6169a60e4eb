"""Keeping credentials out of logs, error messages and dead-letter headers.

A URL may carry ``user:password@`` (a schema registry behind basic auth is
configured that way), and every message that names the URL, or quotes an HTTP
client's exception about it, would repeat the password. :func:`redact_text`
masks the userinfo of every URL in a text; the logging set-up applies it to
every log line (:func:`redact_event`), the CLI to every error it prints, the
worker to every dead-letter header.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

MASK = "***"
# scheme://userinfo@ up to the LAST '@' before whitespace: RFC 3986 wants '@', '/', '?' and '#' in a password
# percent-encoded, but urllib (and so the Schema Registry client) splits at the last '@', so "u:p@ss@host" works,
# and a password with a '/', '?' or '#' makes the URL fail with an error quoting it: both must be masked whole. An
# '@' in a path or query then masks the host too; that only hides more. "scheme:///" (no authority) is left as is.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]\S*@")


def redact_text(text: str) -> str:
    """``text`` with the userinfo of every URL in it masked (user names too: an API key is often the user).

    >>> redact_text("registry https://svc:s3cret@sr.example:8081/x did not answer")
    'registry https://***@sr.example:8081/x did not answer'
    >>> redact_text("http://schema-registry:8081")
    'http://schema-registry:8081'
    """
    if "://" not in text:  # the common case: nothing to look for
        return text
    return _USERINFO.sub(rf"\g<scheme>{MASK}@", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(item) for item in value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, BaseException):
        return redact_text(repr(value))
    return value


def redact_event(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: every string in a log event (and any exception text) with URL userinfo masked.

    >>> redact_event(None, "info", {"event": "x", "url": "https://u:p@h", "n": 1})
    {'event': 'x', 'url': 'https://***@h', 'n': 1}
    """
    for key, value in event_dict.items():
        event_dict[key] = _redact_value(value)
    return event_dict
