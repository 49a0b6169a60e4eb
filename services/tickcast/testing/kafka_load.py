"""Many trading systems each reading Kafka itself, for the bench: one consumer each, as a system without a
gateway would run it.

Run as ``python -m tickcast.testing.kafka_load CLIENTS SECONDS SYMBOLS [--processes=N]`` with the pipeline's environment
(``TICKCAST_BOOTSTRAP_SERVERS`` etc.). Client ``n`` wants ``SYMBOLS[n % len]``; like a trading system that
does not know how the topic is keyed, it assigns every partition of ``predictions`` (no consumer group,
nothing committed) and keeps its symbol's predictions. One thread per consumer: librdkafka releases the GIL
while it fetches, so no client waits for another's Python.

Prints one JSON line: events per client (so a starved client shows), and what the consumers asked of the
broker, from librdkafka's statistics (``statistics.interval.ms``): requests sent, bytes sent and received,
per second, over the window after every consumer had its first statistics. Counts do not change with the
machine's load the way CPU seconds do: a fetch request is a fetch request however long it waited for a core.
``CLIENTS=1`` measures one consumer configured as the gateway's, i.e. what one gateway replica asks.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import TopicPartition

from tickcast.common.kafka import new_consumer
from tickcast.common.settings import CommonSettings
from tickcast.common.topics import symbol_key

#: librdkafka's logical offset "N before the end" (RD_KAFKA_OFFSET_TAIL_BASE - N); 0 records back is the end.
#: Tansu workaround (test code): its ListOffsets "latest" is a lower bound (tickcast.testing.drain), so
#: OFFSET_END starts a little early there; that only adds a few records at the start, before the window.
_OFFSET_END = -1
STATS_INTERVAL_MS = 1000
_COUNTED = ("tx", "tx_bytes", "rx", "rx_bytes")


@dataclass
class ClientMeter:
    """One consumer's events for its symbol, and its latest librdkafka counters (cumulative) with their time."""

    events: int = 0
    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)

    def on_stats(self, text: str) -> None:
        stats: dict[str, Any] = json.loads(text)
        snapshot = {name: float(stats.get(name, 0)) for name in _COUNTED}
        snapshot["at"] = time.monotonic()
        if not self.first:
            self.first = snapshot
        self.last = snapshot


def consume(settings: CommonSettings, symbol: str, until: float, meter: ClientMeter) -> None:
    consumer = new_consumer(
        settings,
        f"tickcast-bench-own-{uuid.uuid4().hex[:12]}",  # required by librdkafka for assign(); never joined
        **{
            "enable.auto.commit": False,
            "auto.offset.reset": "latest",
            # What the gateway uses too: a trading system wants its predictions within tens of ms.
            "fetch.wait.max.ms": 20,
            "statistics.interval.ms": STATS_INTERVAL_MS,
            "stats_cb": meter.on_stats,
        },
    )
    topic = settings.predictions_topic
    consumer.assign([TopicPartition(topic, p, _OFFSET_END) for p in range(settings.partitions)])
    wanted = symbol_key(symbol)
    try:
        while (remaining := until - time.monotonic()) > 0:
            for message in consumer.consume(num_messages=1000, timeout=min(0.2, remaining)):
                # Keyed by symbol: the key says whose it is. Decoding its own predictions would cost this client
                # CPU, not the broker anything, and the broker is what is compared.
                if message.error() is None and message.key() == wanted:
                    meter.events += 1
    finally:
        consumer.close()


def requests_per_s(meters: list[ClientMeter]) -> dict[str, float | None]:
    """Summed rates of the consumers' counters, each over its own first..last statistics.

    >>> a = ClientMeter(first={"tx": 0, "tx_bytes": 0, "rx": 0, "rx_bytes": 0, "at": 0.0})
    >>> a.last = {"tx": 100, "tx_bytes": 1e4, "rx": 100, "rx_bytes": 5e4, "at": 10.0}
    >>> requests_per_s([a, a])["tx_per_s"]
    20.0
    """
    rates: dict[str, float | None] = {}
    for name in _COUNTED:
        spans = [(m.last[name] - m.first[name], m.last["at"] - m.first["at"]) for m in meters if m.first]
        total = sum(delta / span for delta, span in spans if span > 0)
        rates[f"{name}_per_s"] = round(total, 1) if spans else None
    return rates


def run_share(symbols: list[str], until: float) -> list[ClientMeter]:
    """One process's consumers, one thread each, until ``until`` (monotonic)."""
    settings = CommonSettings()
    meters = [ClientMeter() for _ in symbols]
    threads = [
        threading.Thread(target=consume, args=(settings, symbol, until, meter), daemon=True)
        for symbol, meter in zip(symbols, meters, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, until - time.monotonic()) + 30)
    return meters


def _share(job: tuple[list[str], float]) -> tuple[list[ClientMeter], float]:
    meters = run_share(*job)
    return meters, time.process_time()


def run(clients: int, seconds: float, symbols: list[str], processes: int = 1) -> dict[str, object]:
    """``clients`` consumers (client ``n`` wanting ``symbols[n % len]``) over ``processes`` processes: a hundred
    consumers each creating a Python object per record of the whole stream did not keep up in one process."""
    wanted = [symbols[n % len(symbols)] for n in range(clients)]
    processes = max(1, min(processes, clients))
    until = time.monotonic() + seconds  # CLOCK_MONOTONIC: the same clock in every process of the machine
    jobs = [(wanted[n::processes], until) for n in range(processes)]
    if processes == 1:
        shares = [_share(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            shares = pool.map(_share, jobs)
    meters = [meter for share, _ in shares for meter in share]
    events = [meter.events for meter in meters]
    return {
        "clients": clients,
        "events": sum(events),
        "events_min_per_client": min(events),
        "clients_without_events": sum(1 for count in events if count == 0),
        "clients_with_statistics": sum(1 for meter in meters if meter.first),
        **requests_per_s(meters),
        "processes": processes,
        "load_cpu_s": round(sum(cpu_s for _, cpu_s in shares), 2),
    }


if __name__ == "__main__":
    options = [arg for arg in sys.argv[1:] if arg.startswith("--processes=")]
    count, window, names = [arg for arg in sys.argv[1:] if arg not in options]
    spread = int(options[-1].split("=", 1)[1]) if options else 1
    print(json.dumps(run(int(count), float(window), names.split(","), spread)), flush=True)
