"""The data catalogue as an AsyncAPI 3.0 document, built from the topic specs and the schema catalogue.

AsyncAPI is to event-driven APIs what OpenAPI is to HTTP ones; a document lists channels (topics), the
messages on them (every schema version a reader may meet, with its Avro contract), the operations (who
sends, who receives, in which consumer group) and Kafka bindings (partitions, replicas, topic configs).
Extensions (``x-``) carry what AsyncAPI has no field for: schema ids, compatibility mode, lineage fields.
"""

from __future__ import annotations

from typing import Any

import tickcast
from tickcast.common.contracts.catalogue import Catalogue, CatalogueEntry
from tickcast.common.topic_specs import Client, TopicSpec

AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
KAFKA_BINDING = "0.5.0"
#: How the Confluent wire format is named by the Kafka message binding: the 5-byte header in the payload.
CONFLUENT_ENCODING = "confluent"


def _ident(text: str) -> str:
    """A component key AsyncAPI accepts (letters, digits, ``.``, ``_``, ``-``).

    >>> _ident("predictor (tickcast worker)")
    'predictor_tickcast_worker'
    """
    kept = "".join(c if c.isalnum() or c in "._-" else "_" for c in text)
    return "_".join(part for part in kept.split("_") if part)


def _message(spec: TopicSpec, entry: CatalogueEntry | None, current: bool, mode: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": spec.role if current else f"{spec.role}_id{entry.schema_id if entry else ''}",
        "title": spec.value if entry is None else f"{entry.schema.get('namespace')}.{entry.schema.get('name')}",
        "summary": spec.summary,
        "bindings": {"kafka": {"key": {"type": "string", "description": spec.key}, "bindingVersion": KAFKA_BINDING}},
    }
    if entry is not None:
        message["contentType"] = "application/vnd.apache.avro+binary"
        message["payload"] = {"schemaFormat": AVRO_FORMAT, "schema": entry.schema}
        message["bindings"]["kafka"].update(
            schemaIdLocation="payload",
            schemaIdPayloadEncoding=CONFLUENT_ENCODING,
            schemaLookupStrategy="TopicNameStrategy",
        )
        message["x-schema-id"] = entry.schema_id
        message["x-schema-file"] = f"schemas/{entry.file}"
        message["x-compatibility"] = mode
        if not current:
            message["description"] = "An earlier version, still readable: records written with it stay on the topic."
    else:
        message["contentType"] = "application/octet-stream"
        message["payload"] = {"type": "string", "format": "binary", "description": spec.value}
    if spec.headers:
        message["headers"] = {
            "type": "object",
            "properties": {name: {"type": "string", "description": text} for name, text in spec.headers.items()},
        }
    if spec.lineage:
        message["x-lineage"] = dict(spec.lineage)
    return message


def _operation(spec: TopicSpec, client: Client, action: str, messages: list[str]) -> tuple[str, dict[str, Any]]:
    verb = "sends to" if action == "send" else "receives from"
    operation: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{spec.role}"},
        "title": f"{client.service} {verb} {spec.name}",
        "messages": [{"$ref": f"#/channels/{spec.role}/messages/{name}"} for name in messages],
        "x-service": client.service,
    }
    if client.note:
        operation["description"] = client.note
    if action == "receive" and client.group:
        operation["bindings"] = {
            "kafka": {"groupId": {"type": "string", "enum": [client.group]}, "bindingVersion": KAFKA_BINDING}
        }
    return f"{_ident(client.service)}_{action}s_{spec.role}", operation


def asyncapi_document(specs: list[TopicSpec], catalogue: Catalogue, bootstrap_servers: str) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of these topics.

    >>> from tickcast.common.settings import CommonSettings
    >>> from tickcast.common.topic_specs import topic_specs
    >>> from tickcast.common.contracts.catalogue import read_catalogue
    >>> from tickcast.common.contracts.base import schemas_dir
    >>> doc = asyncapi_document(topic_specs(CommonSettings()), read_catalogue(schemas_dir()), "kafka:9092")
    >>> doc["asyncapi"], sorted(doc["channels"])
    ('3.0.0', ['dead_letters', 'model_events', 'predictions', 'replay_receipts', 'snapshots', 'ticks'])
    >>> list(doc["channels"]["predictions"]["messages"])
    ['predictions', 'predictions_id6', 'predictions_id2']
    """
    subjects = catalogue.subjects()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in specs:
        versions = subjects.get(spec.subject, []) if spec.subject else []
        current = versions[-1] if versions else None
        mode = catalogue.mode(spec.subject).value if spec.subject else None
        messages = {spec.role: _message(spec, current, True, mode)}
        for earlier in reversed(versions[:-1]):
            messages[f"{spec.role}_id{earlier.schema_id}"] = _message(spec, earlier, False, mode)
        topic_configuration: dict[str, Any] = {"cleanup.policy": spec.configs["cleanup.policy"].split(",")}
        if "retention.ms" in spec.configs:
            topic_configuration["retention.ms"] = int(spec.configs["retention.ms"])
        topic_configuration["min.insync.replicas"] = int(spec.configs["min.insync.replicas"])
        channels[spec.role] = {
            "address": spec.name,
            "title": spec.name,
            "summary": spec.summary,
            "messages": messages,
            "bindings": {
                "kafka": {
                    "topic": spec.name,
                    "partitions": spec.partitions,
                    "replicas": spec.replication_factor,
                    "topicConfiguration": topic_configuration,
                    "bindingVersion": KAFKA_BINDING,
                }
            },
            "x-created-by": spec.created_by,
        }
        for client in spec.producers:
            key, operation = _operation(spec, client, "send", [spec.role])
            operations[key] = operation
        for client in spec.consumers:
            key, operation = _operation(spec, client, "receive", list(messages))
            operations[key] = operation
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "tickcast",
            "version": tickcast.__version__,
            "description": "Streaming per-symbol price prediction on Kafka: the topics, their contracts and clients.",
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/vnd.apache.avro+binary",
        "servers": {"kafka": {"host": bootstrap_servers.split(",")[0], "protocol": "kafka"}},
        "channels": channels,
        "operations": operations,
    }
