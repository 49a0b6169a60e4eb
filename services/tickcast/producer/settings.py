"""Settings of the tick producer (``TICKCAST_*``)."""

from __future__ import annotations

from pydantic import Field

from tickcast.common.settings import CommonSettings


class ProducerSettings(CommonSettings):
    """Producer tuning; the Kafka and topic fields come from :class:`CommonSettings`.

    >>> ProducerSettings(bootstrap_servers="k:9092").linger_ms
    20
    """

    linger_ms: int = Field(
        20, ge=0, le=1000, description="Producer batching delay; larger batches cost the broker far less CPU."
    )
    connect_timeout_s: float = Field(30.0, gt=0, description="How long to retry an unreachable broker at start.")
