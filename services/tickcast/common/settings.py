"""Settings every service shares: where Kafka is, topic names, schema source, logging.

Each service defines one frozen subclass with its own fields. Values come from
``TICKCAST_*`` environment variables (or keyword arguments in tests); nothing
else in tickcast reads ``os.environ``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TOPIC_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"


class CommonSettings(BaseSettings):
    """Kafka connection, topic names and logging, read from ``TICKCAST_*``.

    >>> s = CommonSettings(bootstrap_servers="127.0.0.1:9092")
    >>> s.ticks_topic, s.predictions_topic, s.dlq_topic, s.partitions
    ('ticks', 'predictions', 'ticks.dlq', 8)
    """

    model_config = SettingsConfigDict(env_prefix="TICKCAST_", frozen=True, extra="ignore")

    bootstrap_servers: str = Field("localhost:9092", description="Kafka bootstrap servers, comma-separated host:port.")
    schema_registry_url: str | None = Field(
        None, description="Confluent Schema Registry URL; unset = ids from schemas/catalogue.json."
    )
    ticks_topic: str = Field("ticks", pattern=TOPIC_NAME_PATTERN, description="Input topic of ticks.")
    predictions_topic: str = Field(
        "predictions", pattern=TOPIC_NAME_PATTERN, description="Output topic of predictions."
    )
    dlq_topic: str = Field(
        "ticks.dlq",
        pattern=TOPIC_NAME_PATTERN,
        description="Dead letters: ticks that could not be processed.",
    )
    partitions: int = Field(
        8, ge=1, le=10_000, description="Partitions of ticks and predictions (the scaling ceiling)."
    )
    replication_factor: int = Field(1, ge=1, le=16, description="Replication factor for topics tickcast creates.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["json", "console"] = Field("json", description="json for machines, console for people.")

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_are_host_port(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {server.strip()!r}")
        return value
