"""Autoscaling the predictor workers: a pure decision from the lag, its trend, the processing rate and the clock.

Two policies compose, and every :class:`~tickcast.ops.autoscale.policy.Decision` says why in words.

Dynamic (size the group to the work):

* ``incoming = processing rate + lag change rate`` (ticks/s), both between the same two samples ``trend_window_s``
  apart: what arrived is what was consumed plus what the lag grew by,
* ``need = (incoming + lag / drain_target_s) / per_worker_rate`` workers, i.e. keep up with the feed *and* clear
  the backlog within ``drain_target_s``,
* utilisation ``u = need / current``. Above ``scale_up_utilization`` scale up, below ``scale_down_utilization``
  scale down, in both cases to ``ceil(need / target_utilization)``; in between (the hysteresis band) hold. As
  ``scale_down < target < scale_up``, a group just resized lands inside the band, so noise does not flap it.
* at most ``max_step_up`` / ``max_step_down`` workers per decision; no scale-up within ``scale_up_cooldown_s``
  of the last change and no scale-down within the longer ``scale_down_cooldown_s`` (a rebalance pauses
  consumption for a few seconds, which must not read as "need more").

Scheduled (calendar bounds): windows of local time in one zone, on chosen weekdays, each with a ``min`` and
optional ``max`` worker count; the first window that contains the moment applies, otherwise ``[outside]``.

Result: ``clamp(dynamic, window min/max)``, then the operator's ``--min``/``--max`` (they replace the window's
bounds), then at most the partition count (a group never uses more workers than partitions: the extra ones
idle) and at least 1. Ceilings win over floors. Bounds apply at once, cooldowns only gate the dynamic part.

Config file: TOML, read with the standard library, every key optional. The built-in default, every key with
a comment, is ``default.toml`` in this package (:data:`tickcast.ops.autoscale.config.DEFAULT_CONFIG_TEXT`).

Modules: :mod:`.policy` (the decision and its parameters), :mod:`.rates` (lag trend and processing rate),
:mod:`.schedule` (calendar windows), :mod:`.config` (reading a config file), :mod:`.loop` (the control loop
that asks the local supervisor for the decided count) and :mod:`.errors`.
"""
