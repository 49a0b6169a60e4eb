"""The gateway's Prometheus metrics, in a registry of its own (one per app, so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Fan-out delay buckets (seconds): from read off Kafka to handed to a client's connection.
DELAY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Event-loop stall buckets (seconds): a GET's budget is 5 ms, so finer below that.
#: Why a record of the predictions topic was not served (``tickcast_gateway_records_refused_total``).
REFUSAL_REASONS = ("undecodable", "non_finite")
STALL_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class GatewayMetrics:
    """Clients connected, events fanned out, fan-out delay, clients dropped by reason, predictions read, and
    event-loop stalls (loop lag, GC pauses)."""

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
        self.predictions = Counter(
            "tickcast_gateway_predictions_read", "Predictions read from Kafka.", registry=self.registry
        )
        self.refused = Counter(
            "tickcast_gateway_records_refused",
            "Records of the predictions topic not served, by reason: undecodable, or non_finite (a NaN or an"
            " infinity, which JSON cannot carry).",
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
            "tickcast_gateway_ready", "1 once every partition was read to its end after start.", registry=self.registry
        )
