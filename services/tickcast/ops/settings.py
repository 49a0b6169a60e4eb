"""Settings of the ops tools (``tickcast lag``, ``supervise``, ``scale``, ``autoscale``), read from ``TICKCAST_*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from tickcast.common.settings import CommonSettings


class OpsSettings(CommonSettings):
    """Which group to watch and where the local supervisor keeps its files; Kafka fields come from the base class.

    >>> s = OpsSettings(bootstrap_servers="k:9092")
    >>> s.group_id, str(s.state_dir), s.admin_timeout_s
    ('tickcast-predictor', '.tickcast/supervisor', 10.0)
    """

    group_id: str = Field(
        "tickcast-predictor",
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="Consumer group of the predictor workers (their Faust app id); the same variable the workers read.",
    )
    state_dir: Path = Field(
        Path(".tickcast/supervisor"),
        description="Where `tickcast supervise` keeps the desired worker count, its status and the worker logs.",
    )
    admin_timeout_s: float = Field(10.0, gt=0, le=300, description="Deadline of each Kafka request the ops tools make.")
