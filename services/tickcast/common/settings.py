"""Settings every service shares: where Kafka is and how to log in to it, topic names, schema source, logging.

Each service defines one frozen subclass with its own fields. Values come from
``TICKCAST_*`` environment variables (or keyword arguments in tests); nothing
else in tickcast reads ``os.environ``.
"""

from __future__ import annotations

import difflib
import os
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tickcast.common.security import KafkaClientSettings

TOPIC_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"


class CommonSettings(KafkaClientSettings):
    """Kafka connection (bootstrap servers, TLS, SASL: see :mod:`tickcast.common.security`), topic names and
    logging, read from ``TICKCAST_*``.

    >>> s = CommonSettings(bootstrap_servers="127.0.0.1:9092")
    >>> s.ticks_topic, s.predictions_topic, s.dlq_topic, s.partitions
    ('ticks', 'predictions', 'ticks.dlq', 8)
    """

    # Variables of other services (a ConfigMap shared by all) are ignored, not refused; misspellings of this
    # service's own settings are reported by ``misspelt_variables``.
    model_config = SettingsConfigDict(env_prefix="TICKCAST_", frozen=True, extra="ignore")

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
    model_events_topic: str = Field(
        "model-events",
        pattern=TOPIC_NAME_PATTERN,
        description="Audit trail of model governance: promotions, demotions and drift per symbol.",
    )

    @property
    def dlq_receipts_topic(self) -> str:
        """Receipts of dead letters already replayed (``tickcast dlq replay``), named after the dead-letter topic.

        >>> CommonSettings(dlq_topic="ticks.dlq").dlq_receipts_topic
        'ticks.dlq.receipts'
        """
        return f"{self.dlq_topic}.receipts"

    partitions: int = Field(
        8, ge=1, le=10_000, description="Partitions of ticks and predictions (the scaling ceiling)."
    )
    replication_factor: int = Field(1, ge=1, le=16, description="Replication factor for topics tickcast creates.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["json", "console"] = Field("json", description="json for machines, console for people.")

    @classmethod
    def misspelt_variables(cls, environ: dict[str, str] | None = None) -> list[str]:
        """``TICKCAST_*`` variables that are no setting of this service but look like one of its settings.

        Pydantic ignores unknown variables (each service reads only its own), so a typo would silently
        leave the default in force; this names it. Variables far from every setting (another service's)
        are not reported.

        >>> CommonSettings.misspelt_variables({"TICKCAST_SASL_USER": "bob", "TICKCAST_GATEWAY_PORT": "1"})
        ['TICKCAST_SASL_USER is not a setting; did you mean TICKCAST_SASL_USERNAME?']
        """
        names = {name.upper() for name in cls.model_fields}
        found = []
        for variable in sorted(os.environ if environ is None else environ):
            if not variable.startswith("TICKCAST_") or variable[len("TICKCAST_") :] in names:
                continue
            close = difflib.get_close_matches(variable[len("TICKCAST_") :], names, n=1, cutoff=0.8)
            if close:
                found.append(f"{variable} is not a setting; did you mean TICKCAST_{close[0]}?")
        return found
