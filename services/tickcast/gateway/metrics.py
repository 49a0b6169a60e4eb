"""The gateway's Prometheus metrics, in a registry of its own (one per app, so tests can build many)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

#: Fan-out delay buckets (seconds): from read off Kafka to handed to a client's connection.
DELAY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Event-loop stall buckets (seconds): a GET's budget is 5 ms, so finer below that.
#: Why a record of the predictions topic was not served (``tickcast_gateway_records_refused_total``).
#: ``failed``: decoding or applying it raised what no check foresaw (a bug, or an input nobody thought of).
REFUSAL_REASONS = ("undecodable", "non_finite", "failed")
#: Why a request was refused 401 (``tickcast_gateway_auth_refused_total``).
AUTH_REFUSALS = ("missing", "malformed", "unknown")
#: Why an SSE client was dropped (``tickcast_gateway_clients_dropped_total``): the counted ``hub.DropReason`` values.
DROP_REASONS = ("slow_consumer", "revoked", "disconnected", "write_failed")
STALL_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Tally:
    """One client's accepted requests: a plain count, bumped on the event loop (no lock, unlike a Counter)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class ClientRequests(Collector):
    """``tickcast_gateway_client_requests_total{client}``, read from the tallies at scrape time.

    The hot GET counts every request: a prometheus Counter's ``inc()`` (a lock, ~0.3 us in a tight loop) was
    the largest part of the check's cost; a tally is one attribute increment. Everything runs on the loop.

    >>> requests = ClientRequests()
    >>> requests.of("desk-1").count += 2
    >>> [(s.name, s.labels, s.value) for family in requests.collect() for s in family.samples]
    [('tickcast_gateway_client_requests_total', {'client': 'desk-1'}, 2.0)]
    """

    NAME = "tickcast_gateway_client_requests"
    HELP = "Requests to /v1 accepted, by client (a name of the clients file)."

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}

    def of(self, client: str) -> Tally:
        tally = self.tallies.get(client)
        if tally is None:
            tally = self.tallies[client] = Tally()
        return tally

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.NAME, self.HELP, labels=["client"])

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.NAME, self.HELP, labels=["client"])
        for client, tally in sorted(self.tallies.items()):
            family.add_metric([client], float(tally.count))
        yield family


class GatewayMetrics:
    """Clients connected, events fanned out, fan-out delay, clients dropped by reason, predictions read,
    event-loop stalls (loop lag, GC pauses), and with authentication on, requests and streams per client."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.clients = Gauge("tickcast_gateway_clients", "SSE clients connected.", registry=self.registry)
        self.events = Counter(
            "tickcast_gateway_events_fanned_out", "Events handed to SSE clients.", registry=self.registry
        )
        self.delay = Histogram(
            "tickcast_gateway_fanout_delay_seconds",
            "Read off Kafka to handed to a client's connection, per write (of its oldest event).",
            buckets=DELAY_BUCKETS,
            registry=self.registry,
        )
        self.dropped = Counter(
            "tickcast_gateway_clients_dropped", "SSE clients dropped, by reason.", ["reason"], registry=self.registry
        )
        for reason in DROP_REASONS:
            self.dropped.labels(reason)  # at 0 from the start, as the refusals below
        self.predictions = Counter(
            "tickcast_gateway_predictions_read", "Predictions read from Kafka.", registry=self.registry
        )
        self.refused = Counter(
            "tickcast_gateway_records_refused",
            "Records of the predictions topic not served, by reason: undecodable, non_finite (a NaN or an"
            " infinity, which JSON cannot carry), or failed (decoding or applying it raised an unexpected error;"
            " skipped, possibly after it reached the cache and some clients).",
            ["reason"],
            registry=self.registry,
        )
        for reason in REFUSAL_REASONS:
            # At 0 from the start: a series that first appears at 1 shows no increase, and the alert would miss it.
            self.refused.labels(reason)
        self.dead_letters = Counter(
            "tickcast_gateway_dead_letters_seen",
            "Dead letters written since the gateway started.",
            registry=self.registry,
        )
        self.symbols = Gauge(
            "tickcast_gateway_symbols", "Symbols in the latest-prediction cache.", registry=self.registry
        )
        self.loop_lag = Histogram(
            "tickcast_gateway_loop_lag_seconds",
            "How late a 10 ms timer of the event loop fires: the stalls every request and client write wait for.",
            buckets=STALL_BUCKETS,
            registry=self.registry,
        )
        self.gc_pause = Histogram(
            "tickcast_gateway_gc_pause_seconds",
            "Garbage-collection pauses, by generation.",
            ["generation"],
            buckets=STALL_BUCKETS,
            registry=self.registry,
        )
        self.ready = Gauge(
            "tickcast_gateway_ready",
            "1 once every partition was read to its end after start (or after the reader's last restart).",
            registry=self.registry,
        )
        self.reader_failures = Counter(
            "tickcast_gateway_reader_failures",
            "Times the predictions reader's loop failed (not one record's): it is restarted with backoff.",
            registry=self.registry,
        )
        # Labelled by the names of the clients file: as many series as it has lines, forgotten when one goes.
        self.client_requests = ClientRequests()
        self.registry.register(self.client_requests)
        self.client_streams = Gauge(
            "tickcast_gateway_client_streams",
            "SSE streams open, by client (a name of the clients file).",
            ["client"],
            registry=self.registry,
        )
        self.auth_refused = Counter(
            "tickcast_gateway_auth_refused",
            "Requests to /v1 refused 401, by reason: missing (no Authorization), malformed, unknown (wrong or"
            " revoked).",
            ["reason"],
            registry=self.registry,
        )
        for reason in AUTH_REFUSALS:
            self.auth_refused.labels(reason)
        self._client_names: set[str] = set()

    def requests_of(self, client: str) -> Tally:
        """The request tally of ``client`` (keep it to count without a lookup): ``tally.count += 1``."""
        self._client_names.add(client)
        return self.client_requests.of(client)

    def streams_of(self, client: str) -> Gauge:
        """The open-streams gauge of ``client``."""
        self._client_names.add(client)
        return self.client_streams.labels(client)

    def keep_clients(self, names: frozenset[str]) -> None:
        """The clients of the file: each one's request count is exported from 0 before its first request, and the
        series of clients no longer in it are forgotten (their streams were closed before)."""
        for gone in self._client_names - names:
            self.client_requests.tallies.pop(gone, None)
            with suppress(KeyError):
                self.client_streams.remove(gone)
        self._client_names &= names
        for name in names:
            self.requests_of(name)
