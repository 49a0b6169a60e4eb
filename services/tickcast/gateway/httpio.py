"""Small HTTP helpers of the gateway: input parsing, problems as JSON, ETags."""

from __future__ import annotations

import hashlib
import json
import time

from fastapi.responses import Response

from tickcast.common.validation import SYMBOL_PATTERN
from tickcast.gateway.cache import Published

#: The symbol rule of the tick contract, anchored, for the OpenAPI document and request validation.
SYMBOL_REGEX = f"^{SYMBOL_PATTERN.pattern}$"
#: Cache-Control of every prediction answer: a prediction matters for a second, so always revalidate (cheap: 304).
REVALIDATE = "no-cache"


class BadRequest(ValueError):
    """Input a client must fix; answered 422 with a one-sentence body."""


def problem(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    """A JSON error body ``{"error": ..., "detail": ...}``.

    >>> problem(404, "unknown_symbol", "no prediction for 'ZZZ'").body
    b'{"error":"unknown_symbol","detail":"no prediction for \\'ZZZ\\'"}'
    """
    body = json.dumps({"error": error, "detail": detail}, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def parse_symbols(text: str | None, limit: int) -> frozenset[str] | None:
    """The symbols of ``?symbols=A,B`` (None if not given); raises :class:`BadRequest` naming the first bad one.

    >>> sorted(parse_symbols("SPY, BAC,SPY", limit=5))
    ['BAC', 'SPY']
    >>> parse_symbols("spy", limit=5)
    Traceback (most recent call last):
    ...
    tickcast.gateway.httpio.BadRequest: symbol 'spy' does not match [A-Z0-9][A-Z0-9._:/-]{0,31}
    """
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise BadRequest("symbols is empty: name at least one symbol, or leave the parameter out")
    if len(names) > limit:
        raise BadRequest(f"{len(names)} symbols named, at most {limit} per request")
    for name in names:
        if not SYMBOL_PATTERN.fullmatch(name):
            raise BadRequest(f"symbol {name[:40]!r} does not match {SYMBOL_PATTERN.pattern}")
    return frozenset(names)


def age_ms(item: Published, now_s: float | None = None) -> float:
    """Milliseconds since the worker made the prediction (negative if the clocks disagree)."""
    return round((time.time() if now_s is None else now_s) * 1000.0 - item.predicted_at_ms, 1)


def with_age(item: Published, now_s: float) -> str:
    """The prediction's JSON with ``age_ms`` added, without decoding it again.

    >>> with_age(Published(0, 1, "A", 0.0, 1_000.0, '{"symbol":"A"}'), now_s=2.0)
    '{"symbol":"A","age_ms":1000.0}'
    """
    return f'{item.body[:-1]},"age_ms":{age_ms(item, now_s)}}}'


def etag_of(items: list[Published]) -> str:
    """A strong ETag naming exactly these predictions (by topic position).

    >>> etag_of([Published(3, 41, "A", 0.0, 0.0, "{}")])
    '"3:41"'
    """
    if len(items) == 1:
        return f'"{items[0].partition}:{items[0].offset}"'
    digest = hashlib.blake2b(
        ",".join(f"{i.symbol}@{i.partition}:{i.offset}" for i in items).encode(), digest_size=12
    ).hexdigest()
    return f'"{digest}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (or ``*``); weak ``W/`` tags compare too.

    >>> matches('"a", W/"3:41"', '"3:41"'), matches(None, '"x"'), matches("*", '"x"')
    (True, False, True)
    """
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags
