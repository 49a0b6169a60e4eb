"""Where ``bench.gateway``'s processes run: everything on every core (``shared``), or ``split`` as in production.

In production a serving pod gets cores of its own (Kubernetes CPU manager ``static`` policy: a Guaranteed pod
with an integer CPU request = limit is given exclusive cores) and the broker runs on other machines. On the bench
machine the gateway shares two cores with the broker, the workers, the feed and the load generators (wrk, the
SSE clients), and a GET's latency includes the time the gateway's loop waits for a core one of them holds.
``split`` gives the gateway (every thread of it) the last core and everything else the bench starts the others,
with Linux CPU affinity (``os.sched_setaffinity``), so what is left of the tail is the gateway's own.

How: the bench process pins itself (every thread: the paced feed is one of them) to the others' cores before a
stack starts, so every process it starts afterwards (broker, workers, wrk, SSE loads) inherits that mask; the
gateway is then moved to its core, every thread of it (Linux keeps affinity per thread; a thread started later
inherits the mask of the thread that starts it). The same words (``--topology shared|split``) and the same pinning
(``tickcast.common.affinity``) as the latency bench's ``bench.topology``.
"""

from __future__ import annotations

from tickcast.common.affinity import SHARED, SPLIT, TOPOLOGIES, cpus_of, pin, split_cpus, threads_of

__all__ = [
    "SHARED",
    "SPLIT",
    "TOPOLOGIES",
    "cpus_of",
    "pin",
    "split_cpus",
    "threads_of",
    "topologies_of",
    "topology_order",
]


def topologies_of(text: str) -> list[str]:
    """``--topology``: comma-separated topologies, each once.

    >>> topologies_of("shared,split")
    ['shared', 'split']
    >>> topologies_of("both")
    Traceback (most recent call last):
    ...
    ValueError: unknown topology 'both' (one of shared, split)
    """
    names = [name for name in text.split(",") if name]
    for name in names:
        if name not in TOPOLOGIES:
            raise ValueError(f"unknown topology {name!r} (one of {', '.join(TOPOLOGIES)})")
    return list(dict.fromkeys(names)) or [SHARED]


def topology_order(round_: int, topologies: list[str]) -> list[str]:
    """The topologies in round ``round_`` (from 0): as given in rounds 1, 3, …, reversed in 2, 4, … (the
    machine's load drifts; alternating cancels it over pairs of rounds).

    >>> [topology_order(r, ["shared", "split"]) for r in range(2)]
    [['shared', 'split'], ['split', 'shared']]
    """
    return list(topologies) if round_ % 2 == 0 else list(reversed(topologies))
