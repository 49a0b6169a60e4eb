"""TickcastClient over a scripted source: dedup by lineage, gaps, resets, staleness, symbol filter."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from tickcast.client import PredictionRecord, TickcastClient
from tickcast.client.sources import Delivery, Item, Reset

BASE = PredictionRecord(
    "SPY", 0, 100.0, 1.0, 100.01, 1, "READY", "linear", "3", 0, "ticks", 0, 0, 0, 0, "w-1", None, (), 0, 0
)


def record(symbol: str, source_offset: int) -> PredictionRecord:
    return replace(BASE, symbol=symbol, source_offset=source_offset, offset=source_offset)


class ScriptedSource:
    """Pushes a fixed list of items, then stays quiet (as a live stream with nothing new would)."""

    def __init__(self, items: list[Item]) -> None:
        self.items = items

    async def run(self, symbols: frozenset[str] | None, out: asyncio.Queue[Item]) -> None:
        for item in self.items:
            await out.put(item)
        await asyncio.Event().wait()

    async def latest(self, symbol: str) -> PredictionRecord | None:
        return record(symbol, 99)


async def collect(
    client: TickcastClient, symbols: list[str] | None, idle_timeout_s: float = 0.3
) -> list[PredictionRecord]:
    return [r async for r in client.subscribe(symbols, idle_timeout_s=idle_timeout_s)]


def test_repeated_predictions_are_yielded_once_and_skipped_offsets_are_reported_as_gaps() -> None:
    gaps: list[tuple[str, int, int, int]] = []
    items: list[Item] = [
        Delivery(record("SPY" if o % 2 else "BAC", o), complete=True) for o in (0, 1, 2, 1, 2, 3, 7, 8)
    ]
    client = TickcastClient(ScriptedSource(items), on_gap=lambda *gap: gaps.append(gap))
    got = asyncio.run(collect(client, ["SPY", "BAC"]))
    assert [r.source_offset for r in got] == [0, 1, 2, 3, 7, 8]
    assert client.stats.duplicates == 2
    assert gaps == [("ticks", 0, 4, 7)] and client.stats.missed_offsets == 3


def test_a_filtered_stream_does_not_take_other_symbols_offsets_for_gaps_but_a_reset_counts() -> None:
    reset = Reset({0: (1, 5)})
    items: list[Item] = [Delivery(record("SPY", 0), complete=False), reset, Delivery(record("SPY", 5), complete=False)]
    client = TickcastClient(ScriptedSource(items))
    got = asyncio.run(collect(client, ["SPY"]))
    assert [r.source_offset for r in got] == [0, 5]
    assert (client.stats.gaps, client.stats.resets, client.stats.missed_offsets) == (1, 1, 0)


def test_a_symbol_without_predictions_is_reported_stale_once() -> None:
    stale: list[str] = []
    items: list[Item] = [Delivery(record("SPY", 0), complete=True)]
    client = TickcastClient(ScriptedSource(items), stale_after_s=0.2, on_stale=lambda symbol, _: stale.append(symbol))
    got = asyncio.run(collect(client, ["SPY", "KO"], idle_timeout_s=1.5))
    assert [r.symbol for r in got] == ["SPY"]
    assert sorted(stale) == ["KO", "SPY"]  # KO never came; SPY came once, then nothing for longer than 0.2 s
    assert client.stats.stale_symbols == {"KO", "SPY"}


def test_only_the_chosen_symbols_come_out_and_records_are_immutable() -> None:
    items: list[Item] = [Delivery(record(s, o), complete=True) for o, s in enumerate(["SPY", "BAC", "SPY"])]
    client = TickcastClient(ScriptedSource(items))
    got = asyncio.run(collect(client, ["SPY"]))
    assert [r.source_offset for r in got] == [0, 2]
    assert client.seen("SPY") == got[-1]
    with pytest.raises(AttributeError):
        got[0].symbol = "X"  # type: ignore[misc]
    assert asyncio.run(client.latest("KO")) == record("KO", 99)


def test_bad_symbols_are_refused_before_anything_is_read() -> None:
    client = TickcastClient(ScriptedSource([]))
    with pytest.raises(ValueError, match="does not match"):
        asyncio.run(collect(client, ["spy"]))


def test_symbols_outside_the_subscription_are_never_reported_stale_nor_counted_as_received() -> None:
    # A Kafka source reads the chosen symbols' whole partitions, so other symbols' records come through too.
    stale: list[str] = []
    items: list[Item] = [Delivery(record(s, o), complete=True) for o, s in enumerate(["SPY", "BAC", "SPY"])]
    client = TickcastClient(ScriptedSource(items), stale_after_s=0.2, on_stale=lambda symbol, _: stale.append(symbol))
    got = asyncio.run(collect(client, ["SPY"], idle_timeout_s=1.0))
    assert [r.symbol for r in got] == ["SPY", "SPY"]
    assert stale == ["SPY"], f"only the subscribed symbol may be reported stale, got {stale}"
    assert client.stats.received == 2 and client.stats.stale_symbols == {"SPY"}


def test_a_prediction_that_arrives_already_old_is_reported_stale_with_its_age() -> None:
    # A gateway or a consumer behind by a minute (or a replay) delivers forecasts made a minute ago.
    stale: list[tuple[str, float]] = []
    made_us = int((time.time() - 60.0) * 1_000_000)
    items: list[Item] = [Delivery(replace(record("SPY", 0), predicted_at=made_us), complete=True)]
    client = TickcastClient(ScriptedSource(items), stale_after_s=10.0, on_stale=lambda *report: stale.append(report))
    got = asyncio.run(collect(client, ["SPY"], idle_timeout_s=1.0))
    assert [r.symbol for r in got] == ["SPY"]
    assert [symbol for symbol, _ in stale] == ["SPY"], "a forecast made 60 s ago was taken for a fresh one"
    assert 60.0 <= stale[0][1] < 65.0, f"reported {stale[0][1]:.1f} s old, made 60 s before it arrived"


def test_an_empty_symbol_list_is_refused_not_a_subscription_to_nothing() -> None:
    # From a gateway it streamed every prediction to drop them all; from Kafka it read no partition at all.
    client = TickcastClient(ScriptedSource([Delivery(record("SPY", 0), complete=True)]))
    with pytest.raises(ValueError, match="at least one symbol"):
        got = asyncio.run(collect(client, []))
        raise AssertionError(f"subscribe([]) yielded {len(got)} records and ended in silence")
