"""Autoscale decisions over scripted lag histories: prompt scale-up, patient scale-down, no flapping, bounds."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickcast.ops.autoscale.config import DEFAULT_CONFIG
from tickcast.ops.autoscale.policy import AutoscaleConfig, Decision, DynamicPolicy, ScalerState, decide
from tickcast.ops.autoscale.rates import LagSample, processing_rate, recent_samples
from tickcast.ops.autoscale.schedule import Schedule, Window

NEW_YORK = ZoneInfo("America/New_York")
#: No windows: bounds are [1, partitions], so only the dynamic policy acts.
DYNAMIC_ONLY = AutoscaleConfig(schedule=Schedule(windows=()))
SATURDAY_NOON = datetime(2024, 3, 9, 12, tzinfo=UTC)


def new_york(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


@dataclass
class ToyGroup:
    """Workers that each process up to ``per_worker`` ticks/s; what they cannot process piles up as lag."""

    workers: int
    per_worker: float = 500.0
    backlog: float = 0.0
    consumed: float = 0.0

    def advance(self, incoming: float, seconds: float) -> None:
        work = self.backlog + incoming * seconds
        done = min(work, self.workers * self.per_worker * seconds)
        self.backlog = work - done
        self.consumed += done


def simulate(
    incoming: Callable[[float], float],
    seconds: float,
    workers: int = 1,
    config: AutoscaleConfig = DYNAMIC_ONLY,
    tick_s: float = 10.0,
    partitions: int = 8,
    start: datetime = SATURDAY_NOON,
) -> tuple[list[Decision], ToyGroup]:
    """Run the control loop against a toy group; each decision is carried out at once."""
    group = ToyGroup(workers)
    history: list[LagSample] = []
    state = ScalerState()
    decisions = []
    for step in range(int(seconds / tick_s)):
        group.advance(incoming(step * tick_s), tick_s)
        now = start + timedelta(seconds=(step + 1) * tick_s)
        sample = LagSample(now, round(group.backlog), round(group.consumed))
        rate = processing_rate([*history, sample], config.dynamic.trend_window_s)
        decision = decide(
            now=now,
            lag=sample.lag,
            history=history,
            processing_rate=rate,
            current=group.workers,
            partitions=partitions,
            config=config,
            state=state,
        )
        decisions.append(decision)
        group.workers, state = decision.desired, decision.state
        history = recent_samples([*history, sample], config.dynamic.trend_window_s)
    return decisions, group


def changes(decisions: list[Decision]) -> list[Decision]:
    return [d for d in decisions if d.action != "hold"]


def test_a_burst_scales_up_promptly_then_back_down_after_the_cooldown() -> None:
    burst = (300.0, 420.0)

    def incoming(t: float) -> float:
        return 4000.0 if burst[0] <= t < burst[1] else 200.0

    decisions, group = simulate(incoming, seconds=3600)
    moves = changes(decisions)
    first_up = moves[0]
    assert first_up.action == "up", [d.reason for d in moves]
    assert first_up.at <= SATURDAY_NOON + timedelta(seconds=burst[0] + 20), "no scale-up within two ticks of the burst"
    assert max(d.desired for d in decisions) >= 6, "the burst needs at least 6 workers at 500/s each"
    assert all(d.action == "hold" and d.desired == 1 for d in decisions[:29]), "scaled before the burst"

    policy = DYNAMIC_ONLY.dynamic
    for earlier, later in itertools.pairwise(moves):
        gap = (later.at - earlier.at).total_seconds()
        cooldown = policy.scale_up_cooldown_s if later.action == "up" else policy.scale_down_cooldown_s
        assert gap >= cooldown, f"{later.action} {gap}s after the previous change: {later.reason}"
        assert later.current - later.desired <= policy.max_step_down, later.reason
    downs = [d for d in moves if d.action == "down"]
    assert downs and all(d.at > SATURDAY_NOON + timedelta(seconds=burst[1]) for d in downs)
    assert [d.action for d in moves] == sorted((d.action for d in moves), key=lambda a: a == "down"), (
        "scaled up again after scaling down: " + "; ".join(d.reason for d in moves)
    )
    assert decisions[-1].desired == 1 and group.backlog == 0
    assert "utilisation" in first_up.reason and "scale up 1 ->" in first_up.reason


def test_noisy_load_near_the_scale_up_threshold_does_not_flap() -> None:
    noise = random.Random(7)

    def incoming(t: float) -> float:
        return 900.0 * (1 + noise.uniform(-0.15, 0.15))  # 2 workers at 500/s sit at ~0.9 utilisation

    decisions, _ = simulate(incoming, seconds=2 * 3600, workers=2)
    moves = changes(decisions)
    assert len(moves) <= 1, "flapped: " + " | ".join(d.reason for d in moves)
    assert all(d.action == "up" for d in moves)


def test_lag_oscillating_around_the_threshold_changes_the_count_at_most_once() -> None:
    history: list[LagSample] = []
    state, current, moves = ScalerState(), 2, []
    for step in range(120):
        now = SATURDAY_NOON + timedelta(seconds=10 * step)
        lag = 7000 if step % 2 else 500
        decision = decide(
            now=now,
            lag=lag,
            history=history,
            processing_rate=800.0,
            current=current,
            partitions=8,
            config=DYNAMIC_ONLY,
            state=state,
        )
        if decision.action != "hold":
            moves.append(decision)
        current, state = decision.desired, decision.state
        history = [*history, LagSample(now, lag, 0)][-7:]
    assert len(moves) <= 1, " | ".join(d.reason for d in moves)


def one_decision(
    *,
    now: datetime,
    current: int,
    lag: int = 0,
    rate: float = 0.0,
    partitions: int = 8,
    config: AutoscaleConfig = DEFAULT_CONFIG,
    last_change: datetime | None = None,
    previous_lag: int | None = None,
) -> Decision:
    history = [LagSample(now - timedelta(seconds=10), lag if previous_lag is None else previous_lag, 0)]
    return decide(
        now=now,
        lag=lag,
        history=history,
        processing_rate=rate,
        current=current,
        partitions=partitions,
        config=config,
        state=ScalerState(last_change),
    )


def test_pre_open_warm_up_raises_the_floor_in_new_york_time_across_daylight_saving() -> None:
    for day in (new_york(2024, 3, 4, 9, 15), new_york(2024, 7, 1, 9, 15)):  # EST and EDT Mondays
        decision = one_decision(now=day.astimezone(UTC), current=1)
        assert decision.desired == 4, decision.reason
        assert "raised to min 4 of window 'pre-open warm-up'" in decision.reason
    assert one_decision(now=new_york(2024, 3, 4, 8, 59).astimezone(UTC), current=1).desired == 1


def test_market_hours_cap_the_dynamic_policy_at_the_window_max() -> None:
    decision = one_decision(now=new_york(2024, 3, 5, 11), current=8, lag=500_000, rate=4000, partitions=16)
    assert decision.desired == 8 and decision.action == "hold"
    assert "capped at max 8 of window 'market hours'" in decision.reason


def test_after_hours_ceiling_applies_at_once_despite_the_cooldown() -> None:
    at = new_york(2024, 3, 5, 16, 0)
    decision = one_decision(now=at, current=6, rate=3000, last_change=at - timedelta(seconds=5))
    assert decision.desired == 2, decision.reason
    assert "capped at max 2 of window 'after hours'" in decision.reason


def test_weekends_and_nights_use_the_outside_bounds() -> None:
    saturday_open = new_york(2024, 3, 9, 10)
    assert one_decision(now=saturday_open, current=1).bounds.source == "outside the windows"
    assert one_decision(now=new_york(2024, 3, 5, 22), current=1).bounds.source == "outside the windows"


def test_operator_overrides_replace_the_window_and_ceilings_win_over_floors() -> None:
    config = DEFAULT_CONFIG.with_overrides(max_workers=3)
    decision = one_decision(now=new_york(2024, 3, 5, 11), current=1, config=config)
    assert decision.desired == 3, decision.reason
    assert (
        "raised to min 4 of window 'market hours'" in decision.reason and "capped at max 3 of --max" in decision.reason
    )
    floor = one_decision(now=SATURDAY_NOON, current=1, config=DEFAULT_CONFIG.with_overrides(min_workers=2))
    assert floor.desired == 2 and "raised to min 2 of --min" in floor.reason


def test_capped_at_the_partition_count_with_the_reason() -> None:
    decision = one_decision(now=SATURDAY_NOON, current=1, lag=1_000_000, rate=5000, partitions=3)
    assert decision.desired == 3
    assert "capped at 3 partitions (more workers than partitions would idle)" in decision.reason
    warm_up = one_decision(now=new_york(2024, 3, 4, 9, 15), current=1, partitions=2)
    assert warm_up.desired == 2 and "capped at 2 partitions" in warm_up.reason


def test_cooldowns_gate_only_the_dynamic_policy() -> None:
    now = SATURDAY_NOON
    long_ago = now - timedelta(seconds=61)
    assert (
        one_decision(now=now, current=2, lag=200_000, rate=2000, config=DYNAMIC_ONLY, last_change=long_ago).action
        == "up"
    )
    recent = now - timedelta(seconds=30)
    held = one_decision(now=now, current=2, lag=200_000, rate=2000, config=DYNAMIC_ONLY, last_change=recent)
    assert held.action == "hold" and "scale-up cooldown 60s" in held.reason and "last change was 30s ago" in held.reason
    idle = one_decision(now=now, current=6, config=DYNAMIC_ONLY, last_change=now - timedelta(seconds=200))
    assert idle.action == "hold" and "scale-down cooldown 300s" in idle.reason
    later = one_decision(now=now, current=6, config=DYNAMIC_ONLY, last_change=now - timedelta(seconds=301))
    assert later.desired == 4 and "step limit -2 (wanted 1)" in later.reason


def test_no_workers_and_first_sample() -> None:
    none_running = decide(
        now=SATURDAY_NOON,
        lag=0,
        history=[],
        processing_rate=0,
        current=0,
        partitions=8,
        config=DYNAMIC_ONLY,
        state=ScalerState(),
    )
    assert none_running.desired == 1 and "no workers running" in none_running.reason
    first = decide(
        now=SATURDAY_NOON,
        lag=10**6,
        history=[],
        processing_rate=0,
        current=2,
        partitions=8,
        config=DYNAMIC_ONLY,
        state=ScalerState(),
    )
    assert first.action == "hold" and "first sample" in first.reason


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        one_decision(now=datetime(2024, 3, 9, 12), current=1)


HOURS = st.integers(0, 23)


@pytest.mark.long
@settings(max_examples=300, deadline=None)
@given(
    partitions=st.integers(1, 64),
    current=st.integers(0, 100),
    lag=st.integers(0, 10**8),
    past=st.lists(st.tuples(st.integers(1, 120), st.integers(0, 10**8)), max_size=6),
    rate=st.floats(0, 1e6),
    hours=st.tuples(HOURS, HOURS).filter(lambda h: h[0] < h[1]),
    window_min=st.integers(0, 80),
    window_span=st.none() | st.integers(0, 80),
    outside_max=st.none() | st.integers(1, 80),
    override_min=st.none() | st.integers(1, 80),
    override_max=st.none() | st.integers(1, 80),
    minutes=st.integers(0, 7 * 24 * 60 - 1),
    since_change=st.none() | st.integers(0, 1000),
    per_worker_rate=st.floats(1, 1e4),
)
def test_decision_is_within_one_and_the_partitions_and_within_the_bounds(
    partitions: int,
    current: int,
    lag: int,
    past: list[tuple[int, int]],
    rate: float,
    hours: tuple[int, int],
    window_min: int,
    window_span: int | None,
    outside_max: int | None,
    override_min: int | None,
    override_max: int | None,
    minutes: int,
    since_change: int | None,
    per_worker_rate: float,
) -> None:
    window_max = None if window_span is None else max(1, window_min + window_span)
    window = Window("w", time(hours[0]), time(hours[1]), window_min, window_max, frozenset(range(7)))
    config = AutoscaleConfig(
        dynamic=DynamicPolicy(per_worker_rate=per_worker_rate),
        schedule=Schedule(windows=(window,), outside_max=outside_max),
    )
    if override_min is not None and override_max is not None and override_max < override_min:
        override_max = override_min
    config = config.with_overrides(min_workers=override_min, max_workers=override_max)
    now = datetime(2024, 3, 4, tzinfo=NEW_YORK).astimezone(UTC) + timedelta(minutes=minutes)
    history = [LagSample(now - timedelta(seconds=ago), value, 0) for ago, value in sorted(past, reverse=True)]
    decision = decide(
        now=now,
        lag=lag,
        history=history,
        processing_rate=rate,
        current=current,
        partitions=partitions,
        config=config,
        state=ScalerState(None if since_change is None else now - timedelta(seconds=since_change)),
    )

    in_window = time(hours[0]) <= now.astimezone(NEW_YORK).time() < time(hours[1])
    low, high = (window_min, window_max) if in_window else (1, outside_max)
    low = override_min if override_min is not None else low
    high = override_max if override_max is not None else high
    ceiling = min(high if high is not None else partitions, partitions)
    floor = min(max(low, 1), ceiling)
    assert 1 <= decision.desired <= partitions
    assert floor <= decision.desired <= ceiling, decision.reason
    assert decision.reason.startswith(("scale up", "scale down", "hold at"))


def test_a_group_catching_up_after_its_feed_stopped_is_not_seen_as_busy() -> None:
    # The integration test's settings. The feed has stopped: lag only falls, and every tick of it is
    # consumed, most of it early in the window (the backlog left by the burst). Nothing arrives, so nothing is needed.
    policy = DynamicPolicy(per_worker_rate=60.0, drain_target_s=10.0, trend_window_s=6.0, scale_up_cooldown_s=0.0)
    config = AutoscaleConfig(dynamic=policy, schedule=Schedule(windows=()))
    lags = [1500, 600, 100, 0, 0, 0, 0]
    history = [
        LagSample(SATURDAY_NOON + timedelta(seconds=s), lag, 10_000 + 1500 - lag) for s, lag in enumerate(lags[:-1])
    ]
    now = SATURDAY_NOON + timedelta(seconds=len(lags) - 1)
    sample = LagSample(now, lags[-1], 10_000 + 1500 - lags[-1])
    rate = processing_rate([*history, sample], policy.trend_window_s)
    decision = decide(
        now=now, lag=0, history=history, processing_rate=rate, current=1, partitions=8, config=config,
        state=ScalerState(),
    )  # fmt: skip
    assert rate == 250.0
    assert "incoming ~0/s" in decision.reason, decision.reason
    assert decision.action == "hold", decision.reason
