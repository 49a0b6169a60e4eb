"""Settings of the prediction client (``TICKCAST_*``): where to read from, and when a symbol counts as stale."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from tickcast.common.settings import CommonSettings


class ClientSettings(CommonSettings):
    """Kafka and topic fields from :class:`CommonSettings`, plus the gateway and staleness.

    >>> ClientSettings(bootstrap_servers="k:9092").client_stale_after_s
    10.0
    """

    client_gateway_url: str | None = Field(
        None, pattern=r"^https?://\S{1,2000}$", description="Read from this gateway's SSE stream instead of Kafka."
    )
    client_gateway_token: SecretStr | None = Field(
        None, description="Bearer token sent to the gateway (one of its clients file's); unset = none sent."
    )
    client_gateway_ca_file: Path | None = Field(
        None, description="PEM of the CAs an https:// gateway's certificate is checked against (unset: the system's)."
    )
    client_stale_after_s: float = Field(
        10.0,
        gt=0,
        le=86_400,
        description="A subscribed symbol whose newest prediction was made this long ago is reported stale.",
    )
    client_reconnect_max_s: float = Field(
        5.0, gt=0, le=300, description="Longest wait between two reconnects to a gateway (backoff from 0.1 s)."
    )
