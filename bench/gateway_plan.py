"""What ``bench.gateway`` measures, in which order, and when each window opens: pure planning, no processes.

Every measured phase runs on a stack of its own (:mod:`bench.gateway_stack`: a fresh broker, topics, workers,
feed and gateway), and its window opens the same number of seconds after that stack's feed started, so every
phase sees a broker holding the same amount of data. Why: the embedded broker (Tansu, memory storage) costs
more per fetch with every batch it stores (one SSE client's p50 went 39 -> 81 -> 122 -> 225 ms over four
phases sharing one broker, whichever gateway ran), so a phase measured later lost to one measured earlier. On
Apache Kafka, whose fetch cost does not grow with the log, one stack for all phases would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Kinds of measured phase, in the order a run measures them (``--only get,sse,broker`` picks among
#: ``get``, ``sse`` = ``sse_1`` + ``sse_many``, and ``broker`` = the four ``broker_*`` rows).
KINDS = (
    "get",
    "sse_1",
    "sse_many",
    "broker_idle",
    "broker_via_gateway",
    "broker_gateway_consumer",
    "broker_own_consumers",
)
#: Which kinds each ``--only`` name stands for.
GROUPS = {
    "get": ("get",),
    "sse": ("sse_1", "sse_many"),
    "broker": ("broker_idle", "broker_via_gateway", "broker_gateway_consumer", "broker_own_consumers"),
}
#: Kinds measured for the baseline gateway too (``--baseline-src``); the broker rows compare client kinds,
#: not gateways.
AB_KINDS = ("get", "sse_1", "sse_many")
#: The name of each broker row in the results (kept from the one-broker bench, for comparison).
ROWS = {
    "broker_idle": "pipeline_and_gateway",
    "broker_via_gateway": "via_gateway",
    "broker_gateway_consumer": "gateway_consumer_alone",
    "broker_own_consumers": "own_kafka_consumers",
}
#: Seconds a stack needs at least between its feed's start and a phase's lead-in: every symbol reaching the
#: gateway (3-6 s on a loaded 2-core machine).
MIN_SETUP_S = 5.0


@dataclass(frozen=True, slots=True)
class Phase:
    """One measured phase: what, which round (from 0), and which gateways (measured at once) on its stack."""

    kind: str
    round: int
    sides: tuple[str, ...]

    @property
    def label(self) -> str:
        """A name for its logs and messages.

        >>> Phase("sse_many", 1, ("baseline",)).label
        'sse_many-baseline-round2'
        """
        return f"{self.kind}-{'+'.join(self.sides)}-round{self.round + 1}"


def measuring_order(round_: int, with_baseline: bool) -> tuple[str, ...]:
    """Which gateway round ``round_`` (from 0) measures first: the baseline in rounds 1, 3, …, the new one in 2, 4, …

    Each side has a fresh stack now, so the broker's growth no longer favours the side measured first; the
    machine's load still drifts within a run, and alternating cancels that over pairs of rounds.

    >>> [measuring_order(r, True) for r in range(3)], measuring_order(0, False)
    ([('baseline', 'new'), ('new', 'baseline'), ('baseline', 'new')], ('new',))
    """
    if not with_baseline:
        return ("new",)
    return ("baseline", "new") if round_ % 2 == 0 else ("new", "baseline")


def plan(only: list[str], rounds: int = 1, with_baseline: bool = False, together: bool = False) -> list[Phase]:
    """The phases of one run, in order: each kind of ``only`` (in :data:`KINDS` order), then each round of it,
    then each side in :func:`measuring_order` (one stack each; ``together``: both on one stack, measured at once).

    >>> [p.label for p in plan(["sse", "get"])]
    ['get-new-round1', 'sse_1-new-round1', 'sse_many-new-round1']
    >>> [p.label for p in plan(["get"], rounds=2, with_baseline=True)]
    ['get-baseline-round1', 'get-new-round1', 'get-new-round2', 'get-baseline-round2']
    >>> [p.label for p in plan(["get", "broker"], rounds=2, with_baseline=True, together=True)][:3]
    ['get-baseline+new-round1', 'get-new+baseline-round2', 'broker_idle-new-round1']
    """
    unknown = sorted(set(only) - GROUPS.keys())
    if unknown:
        raise ValueError(f"unknown phases {unknown}: expected some of {sorted(GROUPS)}")
    wanted = {kind for name in only for kind in GROUPS[name]}
    phases: list[Phase] = []
    for kind in KINDS:
        if kind not in wanted:
            continue
        ab = with_baseline and kind in AB_KINDS
        for round_ in range(rounds if ab else 1):
            order = measuring_order(round_, ab)
            if together:
                phases.append(Phase(kind, round_, order))
            else:
                phases.extend(Phase(kind, round_, (side,)) for side in order)
    return phases


def result_key(kind: str, side: str, round_: int, rounds: int) -> str:
    """Where a phase's numbers go in the results: ``get`` / ``sse`` (both SSE kinds), ``_baseline`` for the
    baseline gateway, ``_roundN`` when there are several rounds; the broker rows all go under ``broker_cpu``.

    >>> result_key("sse_many", "baseline", 1, 2), result_key("get", "new", 0, 1), result_key("broker_idle", "new", 0, 1)
    ('sse_baseline_round2', 'get', 'broker_cpu')
    """
    if kind.startswith("broker_"):
        return "broker_cpu"
    base = "get" if kind == "get" else "sse"
    return f"{base}{'_baseline' if side == 'baseline' else ''}{f'_round{round_ + 1}' if rounds > 1 else ''}"


def lead_s(kind: str, seconds: float, warmup: float, settle: float) -> float:
    """Seconds a phase's load runs before its window opens: the GET phase's idle window (the gateway's CPU
    for reading the stream alone, at most 10 s), the SSE clients' warm-up (one client too, so both SSE
    phases keep the same timeline), a broker row's settling time (none with no load).

    >>> lead_s("get", 20, 15, 8), lead_s("sse_1", 20, 15, 8), lead_s("broker_idle", 20, 15, 8)
    (10.0, 15.0, 0.0)
    """
    if kind == "get":
        return float(min(seconds, 10.0))
    if kind in ("sse_1", "sse_many"):
        return float(warmup)
    if kind == "broker_idle":
        return 0.0
    return float(settle)


def window_at(requested: float | None, leads: list[float]) -> float:
    """Seconds from a stack's feed start to the opening of its window, the same for every phase of a run:
    ``requested``, or by default the longest lead-in plus :data:`MIN_SETUP_S`, rounded up to 5 s.

    >>> window_at(None, [10.0, 15.0]), window_at(30.0, [15.0])
    (20.0, 30.0)
    >>> window_at(12.0, [10.0, 15.0])
    Traceback (most recent call last):
    ValueError: --window-at 12.0 s leaves no room for a 15.0 s lead-in and 5.0 s of set-up
    """
    longest = max(leads, default=0.0)
    if requested is None:
        return float(-(-(longest + MIN_SETUP_S) // 5) * 5)
    if requested < longest + MIN_SETUP_S:
        raise ValueError(
            f"--window-at {requested} s leaves no room for a {longest} s lead-in and {MIN_SETUP_S} s of set-up"
        )
    return requested


def run_window_at(requested: float | None, seconds: float, warmup: float, settle: float) -> float:
    """A run's :func:`window_at`, from every kind's lead-in, not only the planned ones': the default window is
    then the same whichever phases a run measures (``--only get`` and ``--only sse`` compare).

    >>> run_window_at(None, 20, 15, 8), run_window_at(None, 20, 2, 1), run_window_at(40, 20, 15, 8)
    (20.0, 15.0, 40)
    """
    return window_at(requested, [lead_s(kind, seconds, warmup, settle) for kind in KINDS])


def wait_before_lead(feed_started: float, now: float, at: float, lead: float) -> float:
    """Seconds to wait (monotonic clock) before starting a lead-in of ``lead`` s, so the window opens ``at`` s
    after the feed started; negative when set-up ran late (the window then opens late by that much).

    >>> wait_before_lead(100.0, 107.0, 25.0, 15.0), wait_before_lead(100.0, 112.5, 25.0, 15.0)
    (3.0, -2.5)
    """
    return feed_started + at - lead - now


def merge(results: dict[str, Any], kind: str, key: str, found: dict[str, Any], clients: int) -> None:
    """Put one phase's numbers where the one-broker bench put them: ``get``, ``sse`` (one client's under
    ``sse_1_client``, the many clients' beside it), the broker rows under ``broker_cpu``; each with its stack.

    >>> results = {"broker_cpu": {}}
    >>> merge(results, "sse_1", "sse", {"sse_1_client": {"events": 9}, "stack": {"late_s": 0}}, 5)
    >>> merge(results, "sse_many", "sse", {"sse_5_clients": {"events": 45}, "stack": {"late_s": 1}, "cpu": 2}, 5)
    >>> merge(results, "broker_idle", "broker_cpu", {"broker_cpu_s": 3.0, "stack": {}}, 5)
    >>> results["sse"]["sse_1_client"], results["sse"]["sse_5_clients"], results["sse"]["cpu"]
    ({'events': 9, 'stack': {'late_s': 0}}, {'events': 45, 'stack': {'late_s': 1}}, 2)
    >>> results["broker_cpu"]
    {'pipeline_and_gateway': {'broker_cpu_s': 3.0, 'stack': {}}}
    """
    found = dict(found)
    if kind == "get":
        results[key] = found
    elif kind == "sse_1":
        one = found.pop("sse_1_client")
        results.setdefault(key, {})["sse_1_client"] = {**one, **found}
    elif kind == "sse_many":
        many = f"sse_{clients}_clients"
        own = {name: found.pop(name) for name in ("stack", "pipeline") if name in found}
        results.setdefault(key, {}).update(found)
        results[key][many] = {**found[many], **own}
    else:
        results[key][ROWS[kind]] = found


def settings_of(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments as environment variables of a gateway.

    >>> settings_of(["TICKCAST_GATEWAY_SCHED_SLICE_US=300"])
    {'TICKCAST_GATEWAY_SCHED_SLICE_US': '300'}
    """
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("TICKCAST_"):
            raise SystemExit(f"expected TICKCAST_...=VALUE, got {pair!r}")
        found[key] = value
    return found
