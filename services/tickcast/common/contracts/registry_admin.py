"""Asking a Confluent Schema Registry before registering, and registering explicitly.

Producers and workers only look ids up (:class:`~.confluent_registry.RegistrySchemaStore`); a contract
gets into the registry by ``tickcast schema register``, which first asks the registry's compatibility
endpoint (verbose, so the registry's reasons are shown) and sets the subject's compatibility mode to the
one the catalogue declares, so the registry enforces the same rule as ``tickcast schema check``.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from confluent_kafka.schema_registry import Schema

from tickcast.common.contracts.base import SchemaError, schemas_dir
from tickcast.common.contracts.catalogue import read_catalogue
from tickcast.common.contracts.compatibility import Mode
from tickcast.common.contracts.confluent_registry import new_registry_client
from tickcast.common.redaction import redact_text
from tickcast.common.settings import CommonSettings

#: Registry error codes that mean "nothing registered yet": any first version is compatible.
SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


@dataclass(frozen=True, slots=True)
class Contract:
    """The current version of one contract, under the registry subject the services use for it."""

    subject: str
    file: str
    schema: dict[str, Any]
    mode: Mode


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the registry said about a candidate schema."""

    compatible: bool
    messages: list[str]
    first_version: bool = False


def current_contracts(settings: CommonSettings) -> list[Contract]:
    """Every contract a service writes to Kafka, newest catalogue version, under ``<topic>-value`` (TopicNameStrategy).

    Ticks, predictions, model events (workers write them on a promotion, a demotion or drift, and build
    their codec at start) and replay receipts (``tickcast dlq replay``). Snapshots are internal to the
    predictor and always use the catalogue's ids, never a registry.

    >>> [c.subject for c in current_contracts(CommonSettings(ticks_topic="t"))]
    ['t-value', 'predictions-value', 'model-events-value', 'ticks.dlq.receipts-value']
    """
    catalogue = read_catalogue(schemas_dir())
    subjects = catalogue.subjects()
    contracts = []
    for catalogue_subject, topic in (
        ("ticks-value", settings.ticks_topic),
        ("predictions-value", settings.predictions_topic),
        ("model-events-value", settings.model_events_topic),
        ("dlq-receipts-value", settings.dlq_receipts_topic),
    ):
        latest = subjects[catalogue_subject][-1]
        contracts.append(Contract(f"{topic}-value", latest.file, latest.schema, catalogue.mode(catalogue_subject)))
    return contracts


class RegistryAdmin:
    """The registry calls ``tickcast schema`` makes; every one bounded by ``timeout_s``."""

    def __init__(self, url: str, client_config: dict[str, Any] | None = None, timeout_s: float = 10.0) -> None:
        """``client_config``: TLS and basic auth, as :func:`tickcast.common.security.schema_registry_config` makes."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise SchemaError(f"schema registry URL {redact_text(url)!r} is not http(s)")
        config = client_config or {}
        self._timeout_s = timeout_s
        # The client refuses credentials both in the URL and in basic.auth.user.info, so at most one is set below.
        self._client = new_registry_client({**config, "url": url, "timeout": timeout_s})
        user_info = config.get("basic.auth.user.info")
        if parts.username is not None:
            # The client takes user:password@ from the URL as basic auth; urllib would take it for part of the
            # host name, so it is moved into the header here too.
            user_info = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self._base = url.rstrip("/")
        self._url = redact_text(self._base)  # only ever shown in messages: without its credentials
        self._headers = {"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE}
        if user_info is not None:
            token = base64.b64encode(str(user_info).encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._tls: ssl.SSLContext | None = None
        if url.startswith("https"):
            self._tls = ssl.create_default_context(cafile=config.get("ssl.ca.location"))
            if "ssl.certificate.location" in config:
                self._tls.load_cert_chain(
                    config["ssl.certificate.location"], config.get("ssl.key.location"), config.get("ssl.key.password")
                )

    def ask(self, subject: str, schema: dict[str, Any]) -> Verdict:
        """POST /compatibility/subjects/{subject}/versions/latest?verbose=true: may ``schema`` follow the latest?"""
        path = f"/compatibility/subjects/{urllib.parse.quote(subject, safe='')}/versions/latest?verbose=true"
        body = json.dumps({"schemaType": "AVRO", "schema": json.dumps(schema)}).encode()
        request = urllib.request.Request(self._base + path, data=body, method="POST", headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s, context=self._tls) as response:  # nosec B310 # http(s) only, checked in __init__
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            error = _error_body(exc)
            if exc.code == 404 and error.get("error_code") in (SUBJECT_NOT_FOUND, VERSION_NOT_FOUND):
                return Verdict(True, [], first_version=True)
            raise SchemaError(
                f"schema registry {self._url} failed checking {subject!r}: HTTP {exc.code} {error}"
            ) from exc
        except (OSError, ValueError) as exc:
            raise SchemaError(
                redact_text(f"schema registry {self._url} did not answer for {subject!r}: {exc}")
            ) from exc
        return Verdict(bool(answer.get("is_compatible")), [str(m) for m in answer.get("messages", [])])

    def register(self, subject: str, schema: dict[str, Any], mode: Mode) -> int:
        """Set the subject's compatibility mode, then register ``schema``; its id (an existing one if known)."""
        try:
            self._client.set_compatibility(subject, mode.value)
            return int(self._client.register_schema(subject, Schema(json.dumps(schema), "AVRO")))
        except Exception as exc:  # SchemaRegistryError or the transport's own
            raise SchemaError(redact_text(f"schema registry {self._url} refused {subject!r}: {exc}")) from exc


def _error_body(exc: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        loaded = json.loads(exc.read() or b"{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
