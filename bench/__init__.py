"""Benchmarks of tickcast on an embedded broker: ``python -m bench`` (or ``make bench``).

One module per scenario (throughput, scale-out, latency, rebalance, memory, model cost);
:mod:`bench.plain_loop` is the ceiling: the same per-tick work as a worker without Faust.
Results go to ``bench/results/latest.{json,md}`` and PNG charts next to them.
"""

from __future__ import annotations
