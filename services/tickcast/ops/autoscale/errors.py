"""The one error of autoscale configuration, shared by the policy, the schedule and the config reader."""

from __future__ import annotations


class ConfigError(ValueError):
    """An autoscale config file or value that cannot be used; the message names the file and the key.

    >>> isinstance(ConfigError("a.toml: [dynamic] per_worker_rate: expected a number"), ValueError)
    True
    """
