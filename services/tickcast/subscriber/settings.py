"""Settings of prediction subscribers (``TICKCAST_*``)."""

from __future__ import annotations

from pydantic import Field

from tickcast.common.settings import CommonSettings


class SubscriberSettings(CommonSettings):
    """Subscriber tuning; Kafka and topic fields come from :class:`CommonSettings`.

    >>> SubscriberSettings(bootstrap_servers="k:9092").subscriber_group_id is None
    True
    """

    subscriber_group_id: str | None = Field(
        None,
        description="Consumer group of the subscriber; unset = a private group that reads without committing.",
    )
    session_timeout_s: float = Field(10.0, gt=0, le=300, description="Group session timeout of the subscriber.")
    fetch_max_wait_ms: int = Field(
        50,
        ge=1,
        le=5000,
        description="Longest a fetch waits for data: on brokers that hold fetches for the whole wait (the embedded "
        "one) it adds up to this much to every prediction's latency; shorter costs the broker more fetches.",
    )
