"""Schema ids from a Confluent Schema Registry (``TICKCAST_SCHEMA_REGISTRY_URL``).

A worker looks up the writer schema of every id it has not seen, on its event loop. Records with
random schema ids (garbage, or a hostile producer) must not turn into one slow registry round trip
each, nor a registry that hangs into a stalled loop: every request has a bounded timeout and no
retries, an id the registry does not know is remembered as unknown for a while (a bounded cache), and
a registry that failed is not asked again about that id for a shorter while.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from tickcast.common.contracts.base import SchemaError, SchemaStore
from tickcast.common.redaction import redact_text


class ExpiringIds:
    """Ids remembered with a deadline; the oldest are forgotten first beyond ``max_size``.

    >>> now = [0.0]
    >>> ids = ExpiringIds(ttl_s=10.0, max_size=2, clock=lambda: now[0])
    >>> ids.add(1, "no such id"); ids.add(2, "no such id"); ids.add(3, "no such id")
    >>> ids.get(1), ids.get(3), len(ids)
    (None, 'no such id', 2)
    >>> now[0] = 11.0
    >>> ids.get(3) is None
    True
    """

    def __init__(self, ttl_s: float, max_size: int, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._max_size = max_size
        self._clock = clock
        self._until: OrderedDict[int, tuple[float, str]] = OrderedDict()

    def add(self, key: int, why: str) -> None:
        self._until[key] = (self._clock() + self._ttl_s, why)
        self._until.move_to_end(key)
        while len(self._until) > self._max_size:
            self._until.popitem(last=False)

    def get(self, key: int) -> str | None:
        """Why ``key`` is remembered, or None if it is not (or no longer)."""
        found = self._until.get(key)
        if found is None:
            return None
        if self._clock() >= found[0]:
            del self._until[key]
            return None
        return found[1]

    def __len__(self) -> int:
        return len(self._until)


def new_registry_client(config: dict[str, Any]) -> SchemaRegistryClient:
    """The one place a Schema Registry client is built (``config`` from ``security.schema_registry_config``).

    Raises :class:`SchemaError` (one line, without credentials) for a config the client refuses, e.g. credentials
    both in the URL and in ``TICKCAST_SCHEMA_REGISTRY_USERNAME``, or a URL whose user info breaks it.
    """
    url = str(config.get("url"))
    # The client splits its url at ',' and urllib ends the host part at '/', '?' or '#': with one of those
    # unencoded in a password, the '@' is left outside the host part, and the client's errors quote a piece of
    # the password ("Invalid port: 'pa'", "Invalid url ss@host"). Refused here, naming none of it.
    for part in url.split(","):
        if "@" in part and "@" not in urllib.parse.urlsplit(part.strip()).netloc:
            raise SchemaError(
                f"schema registry {redact_text(url)}: its user info holds a ',', '/', '?' or '#'; "
                "percent-encode them (%2C, %2F, %3F, %23)"
            )
    try:
        return SchemaRegistryClient(config)
    except (ValueError, TypeError) as exc:
        url = redact_text(str(config.get("url")))
        raise SchemaError(redact_text(f"schema registry {url}: the client refuses its settings: {exc}")) from exc


class RegistrySchemaStore(SchemaStore):
    """Finds contracts' ids under ``<topic>-value`` (TopicNameStrategy) and resolves ids through the registry.

    The client caches ids and schemas it found, so the registry is asked once per schema per process;
    this store adds the negative side (ids not found, requests that failed) and the time bound.
    """

    def __init__(
        self,
        url: str,
        client_config: dict[str, Any] | None = None,
        request_timeout_s: float = 5.0,
        unknown_id_ttl_s: float = 60.0,
        failure_ttl_s: float = 5.0,
        unknown_id_cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # No client retries: a retry would double the time one record can hold the worker's loop.
        # client_config carries TLS and basic auth (tickcast.common.security.schema_registry_config).
        self._client = new_registry_client(
            {"url": url, **(client_config or {}), "timeout": request_timeout_s, "max.retries": 0}
        )
        self._url = redact_text(url)  # only ever shown in messages: without its credentials
        self._timeout_s = request_timeout_s
        self._unknown = ExpiringIds(unknown_id_ttl_s, unknown_id_cache_size, clock)
        self._failed = ExpiringIds(failure_ttl_s, unknown_id_cache_size, clock)

    @property
    def unknown_ids_cached(self) -> int:
        """How many ids are remembered as unknown or failed right now (bounded by the cache size)."""
        return len(self._unknown) + len(self._failed)

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """The id the registry already holds for ``schema`` under ``subject``; never registers it.

        Registering is ``tickcast schema register``'s job, after the compatibility check: a producer that
        registered on its own could put a schema the gate rejects into the registry.
        """
        try:
            found = self._client.lookup_schema(subject, Schema(json.dumps(schema), "AVRO")).schema_id
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise SchemaError(
                    f"schema {schema.get('namespace')}.{schema.get('name')} is not registered under subject "
                    f"{subject!r} in {self._url}; run `tickcast schema register` (producers never auto-register)"
                ) from exc
            raise SchemaError(
                redact_text(f"schema registry {self._url} failed for subject {subject!r}: {exc}")
            ) from exc
        except Exception as exc:  # the transport's own (see lookup)
            raise SchemaError(
                redact_text(f"schema registry {self._url} did not answer for subject {subject!r}: {exc}")
            ) from exc
        if found is None:
            raise SchemaError(f"schema registry {self._url} answered without an id for subject {subject!r}")
        return int(found)

    def lookup(self, schema_id: int) -> dict[str, Any] | None:
        if self._unknown.get(schema_id) is not None:
            return None
        failure = self._failed.get(schema_id)
        if failure is not None:
            raise SchemaError(failure)
        try:
            found = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                self._unknown.add(schema_id, "not found")
                return None
            return self._fail(schema_id, f"schema registry {self._url} failed for id {schema_id}: {exc}", exc)
        except Exception as exc:
            # The client's HTTP transport (httpx, or a fork of it, by confluent-kafka version) raises its own
            # timeout and connection types, which are not ours to import.
            message = (
                f"schema registry {self._url} did not answer for id {schema_id} "
                f"(timeout {self._timeout_s}s): {type(exc).__name__}: {exc}"
            )
            return self._fail(schema_id, message, exc)
        # Another serializer's schema under the same registry (Confluent's Protobuf and JSON Schema serializers
        # frame records alike): its records are not Avro. Its text is not JSON either, and json.loads' error
        # escaped every caller that handles only SchemaError (the gateway's reading thread stopped for good).
        if found.schema_type not in (None, "AVRO"):
            raise SchemaError(f"schema id {schema_id} in {self._url} is a {found.schema_type} schema, not Avro")
        try:
            loaded: dict[str, Any] = json.loads(found.schema_str or "null")
        except ValueError as exc:
            raise SchemaError(f"schema id {schema_id} in {self._url} is not JSON: {exc}") from exc
        return loaded

    def _fail(self, schema_id: int, message: str, cause: Exception) -> dict[str, Any] | None:
        # The client's exception may quote the request URL, credentials included.
        message = redact_text(message)
        self._failed.add(schema_id, message)
        raise SchemaError(message) from cause
