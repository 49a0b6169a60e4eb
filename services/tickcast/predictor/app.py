"""The Faust app: ticks in batches through :class:`TickHandler`, plus health, stats and latest-prediction views.

Built by a factory from settings (nothing at import time), so tests and the CLI
can run differently configured workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import faust
import structlog
from faust.types import TP, ConsumerT
from faust.web import Request, Response, View

from tickcast.common.kafka import wait_for_broker
from tickcast.common.memory import limit_malloc_arenas, release_free_memory
from tickcast.common.records import Lineage
from tickcast.common.security import faust_credentials
from tickcast.common.topic_admin import create_declared
from tickcast.common.topic_specs import by_role, topic_specs
from tickcast.predictor.broker_login import check_login
from tickcast.predictor.checkpoints import CheckpointPolicy
from tickcast.predictor.eviction import EvictionPolicy
from tickcast.predictor.faust_tuning import FetchedRecord, TunedApp
from tickcast.predictor.gc_pauses import PROCESS_GC_PAUSES
from tickcast.predictor.gc_tuning import tune_for_throughput
from tickcast.predictor.metrics import CONTENT_TYPE, partition_lag
from tickcast.predictor.models import model_spec
from tickcast.predictor.output import OutputProducer
from tickcast.predictor.publishing import OutcomePublisher, PartitionHalted
from tickcast.predictor.rd_fetch import ticks_fetch
from tickcast.predictor.runtime import Predicted, TickHandler
from tickcast.predictor.settings import PredictorSettings
from tickcast.predictor.snapshots import SnapshotCodec
from tickcast.predictor.state_sync import StateKeeper
from tickcast.predictor.web_guard import symbol_problem, web_options

log = structlog.get_logger("tickcast.predictor")

#: A scrape must answer quickly even while the consumer is resetting a partition's position.
POSITION_TIMEOUT_S = 0.5


def faust_broker_url(bootstrap_servers: str) -> str:
    """Faust's spelling of a bootstrap list.

    >>> faust_broker_url("a:1,b:2")
    'kafka://a:1;kafka://b:2'
    """
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap_servers.split(","))


def create_app(settings: PredictorSettings) -> tuple[faust.App, TickHandler]:
    """A configured Faust app that predicts every tick of the ticks topic, a fetched batch at a time."""
    datadir = settings.data_dir / settings.group_id / settings.worker_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = TunedApp(
        settings.group_id,
        datadir=str(datadir),
        # Acks are held until a partition's checkpoint is written (see state_sync); Faust must not
        # wait for them before the revocation handler, which is what writes that checkpoint.
        stream_wait_empty=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        rd_fetch=ticks_fetch(settings),
        broker=faust_broker_url(settings.bootstrap_servers),
        # TLS and SASL of every aiokafka consumer and producer Faust makes (None: plaintext).
        broker_credentials=faust_credentials(settings),
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        # Unbounded, one poll brought a partition's whole 1 MB fetch (~15,000 ticks, over a second of work)
        # and /health waited for all of it (tests/integration/test_catch_up.py).
        broker_max_poll_records=settings.max_poll_records,
        producer_linger=settings.linger_ms / 1000.0,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # Faust listens on web_bind; web_host only names the worker in its canonical URL.
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        **web_options(settings.web_token.get_secret_value() if settings.web_token else None),
        store="memory://",
        # No agent of tickcast's runs on_leader. With the ticks fetched by librdkafka, Faust's leader topic is all
        # aiokafka would still fetch: an empty fetch every fetch wait, on a thread that shares the GIL. Workers
        # with and without it share a group (a rolling deploy): Faust assigns a topic among its subscribers.
        topic_disable_leader=settings.librdkafka_fetch,
    )
    handler = TickHandler(settings)

    def raw_topic(name: str) -> faust.TopicT:
        # Values stay bytes: tickcast frames and decodes Avro itself (Confluent wire format).
        return app.topic(
            name,
            partitions=settings.partitions,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

    output = OutputProducer(
        settings,
        settings.linger_ms,
        **{
            "message.timeout.ms": settings.output_message_timeout_ms,
            "queue.buffering.max.messages": settings.output_queue_max_messages,
            "batch.num.messages": settings.output_batch_max_messages,
            "enable.idempotence": settings.output_idempotence,
        },
    )
    publisher = OutcomePublisher(
        output, settings.predictions_topic, settings.dlq_topic, settings.worker_id, handler.counters,
        settings.model_events_topic,
    )  # fmt: skip
    assigned: set[TP] = set()
    # Partitions stopped because not even a dead letter of one of their records could be produced.
    halted: dict[int, str] = {}
    handler.metrics.halted = halted

    async def commit(offsets: dict[int, int]) -> bool:
        return await app.commit_offsets({TP(settings.ticks_topic, p): offset for p, offset in offsets.items()})

    keeper = StateKeeper(
        forecaster=handler.forecaster,
        codec=snapshot_codec(settings),
        kafka=settings,
        snapshots_topic=settings.snapshots_topic_name,
        output=output,
        commit=commit,
        policy=CheckpointPolicy(settings.snapshot_every_ticks, settings.snapshot_every_s),
        generation=app.group_generation,
        eviction=EvictionPolicy(settings.max_symbols, settings.symbol_ttl_s),
        rewind=lambda partitions: app.rewind(TP(settings.ticks_topic, p) for p in partitions),
    )
    handler.metrics.state_health = keeper.health

    def configured(partitions: set[int]) -> set[int]:
        """``partitions`` but those beyond TICKCAST_PARTITIONS, each of which is halted, loudly."""
        for partition in sorted(p for p in partitions if p >= settings.partitions):
            # Partitions were added to ticks while workers ran (the start check can't see it). Symbols hashed
            # there have no predictions partition of that number, nor a state elsewhere: stop, don't guess.
            halted[partition] = (
                f"partition {partition} of {settings.ticks_topic} is beyond TICKCAST_PARTITIONS={settings.partitions}: "
                "partitions were added to the topic while workers ran; its ticks are neither processed nor "
                "committed. Add the same partitions to the predictions and snapshots topics, set "
                "TICKCAST_PARTITIONS and restart the workers."
            )
            log.critical("partition_beyond_configured", partition=partition, configured=settings.partitions)
        return {p for p in partitions if p < settings.partitions}

    async def restore_rewound(tps: set[TP]) -> None:
        await keeper.on_assigned(configured({tp.partition for tp in tps if tp.topic == settings.ticks_topic}))

    app.on_rewound = restore_rewound
    if keeper.codec is None:
        log.warning("snapshots_disabled", reason="TICKCAST_SNAPSHOT_KEY is unset: state restarts on every rebalance")

    async def predict(tp: TP, records: Sequence[FetchedRecord]) -> None:
        # Between awaits everything is synchronous, so a rebalance or a rewind can only come in at one: after
        # each, the batch goes on only if the partition's progress is still the one it started with.
        partition = tp.partition
        if not await keeper.wait_ready(partition):
            return  # revoked, rewound or halted before its state was loaded: its next reader reads these ticks
        progress = keeper.progress.get(partition)
        publish, handle = publisher.publish, handler.handle
        own_latency, fetched_at, clock = handler.counters.own_latency_seconds.observe, app.fetched_at, time.perf_counter
        horizon = keeper.replay_horizon.get(partition, -1)
        changed: set[str] = set()
        last_offset = records[-1].offset
        for record in records:
            key, value, offset = record.key, record.value, record.offset
            if offset <= horizon and key and keeper.already_applied(key.decode("utf-8", "replace"), partition, offset):
                continue  # replayed after a failover, and already in the restored state
            lineage = Lineage(tp.topic, partition, offset, record.timestamp)
            outcome = handle(key, value, lineage)
            try:
                while not publish(outcome, key, value, lineage):
                    # Backpressure: librdkafka's queue is full. Waiting here keeps the event loop free
                    # (health, timers, rebalances) and stops fetching, as the fetch loop waits for this batch.
                    # Meanwhile no snapshot may be encoded: the state holds this tick, its prediction is unsent.
                    keeper.ticks_awaiting_room += 1
                    try:
                        await output.wait_for_room()
                    finally:
                        keeper.ticks_awaiting_room -= 1
                    if keeper.progress.get(partition) is not progress:
                        return  # revoked or rewound meanwhile: its next reader handles these ticks
            except PartitionHalted as exc:
                # Nothing from this record on may be committed; the state that learned from it is dropped too.
                keeper.stop({partition})
                halted[partition] = str(exc)
                log.critical("partition_halted", partition=partition, offset=offset, error=str(exc))
                return
            own_latency(clock() - fetched_at)
            if isinstance(outcome, Predicted):
                changed.add(outcome.symbol)
        keeper.after_batch(partition, changed, last_offset, len(records))
        if len(handler.forecaster.states) > settings.max_symbols:
            await keeper.evict_if_over_cap()  # a flood of new symbols: holds the batch loop until room is made

    def after_fetch() -> None:
        # Once per fetch, after its last outcome was handed over: serving delivery reports (a Python callback
        # per message sent) and looking for due checkpoints would otherwise delay the fetch's later partitions.
        output.poll()
        keeper.checkpoint_soon()

    app.drain_in_batches(raw_topic(settings.ticks_topic), predict)
    app.after_fetch.append(after_fetch)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # faust's receiver type is narrower than its runtime
    async def on_assigned(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned_now: set[TP] = args[0] if args else kwargs["assigned"]
        ours = {tp for tp in assigned_now if tp.topic == settings.ticks_topic}
        # Restores in the background: until a partition's state is loaded, /stats lists it as not ready
        # and its ticks wait (a broker that times out the restore must not crash the worker).
        await keeper.on_assigned(configured({tp.partition for tp in ours}))
        assigned.clear()
        assigned.update(ours)
        handler.metrics.partitions_assigned(tp.partition for tp in ours)
        log.info("partitions_assigned", partitions=sorted(tp.partition for tp in ours), worker=settings.worker_id)
        if not ours:
            log.warning(
                "worker_idle",
                reason="no partitions assigned: the group has at least as many workers as partitions",
                partitions=settings.partitions,
            )

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # as above
    async def on_revoked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked: set[TP] = args[0] if args else kwargs["revoked"]
        ours = sorted(tp.partition for tp in revoked if tp.topic == settings.ticks_topic)
        log.info("partitions_revoked", partitions=ours, worker=settings.worker_id)
        for partition in ours:
            halted.pop(partition, None)  # its next owner (maybe us) tries again from the last commit
        await keeper.on_revoked(set(ours))

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # as above
    async def on_shutdown(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Faust skips the revocation handler when it stops, so hand the state over here.
        await keeper.on_revoked(set(keeper.progress))

    @app.timer(interval=0.5)
    async def checkpoint_idle_partitions() -> None:
        await keeper.checkpoint_due()

    @app.timer(interval=settings.memory_release_every_s)
    async def release_freed_memory() -> None:
        # Restores and catch-up bursts after a rebalance free lots of memory that glibc would otherwise keep,
        # and RSS would creep up with every fault (measured in bench/memory_growth.py).
        await asyncio.get_running_loop().run_in_executor(None, release_free_memory)

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok", "worker": settings.worker_id})

    @app.page("/stats")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            counters = handler.counters
            # Ticks waiting per partition, as on /metrics: gateways poll this page for the dashboard's lag.
            lag = await consumer_lag(app.consumer, assigned, counters.last_offsets) if assigned else {}
            return self.json(
                {
                    "worker": settings.worker_id,
                    "model": settings.model,
                    "ticks_fetched_by": "librdkafka" if app.rd_fetch is not None else "aiokafka",
                    # Only once its state is loaded; the rest are listed as not ready.
                    "assigned_partitions": sorted(
                        tp.partition for tp in assigned if tp.partition not in keeper.not_ready
                    ),
                    "symbols": len(handler.forecaster.states),
                    "max_symbols": settings.max_symbols,
                    "symbols_evicted": keeper.symbols_evicted,
                    "ticks_in": counters.ticks_in,
                    "predictions_out": counters.predictions_out,
                    "own_latency_buckets": counters.own_latency_seconds.cumulative(),
                    # Per batch: wall, CPU and waiting for a CPU, from its fetch to its last outcome (own_share).
                    "own_share_split": app.own_share.to_stats(),
                    # Every collection's pause, per generation (empty unless run_worker installed the meter).
                    "gc_pauses": PROCESS_GC_PAUSES.to_stats(),
                    "dead_letters": dict(counters.dead_letters),
                    "lag": {str(partition): records for partition, records in sorted(lag.items())},
                    "restored_symbols": keeper.last_restore.restored if keeper.last_restore else 0,
                    "restore_seconds": keeper.last_restore.seconds if keeper.last_restore else None,
                    "snapshots_refused": dict(keeper.refused_total),
                    "partitions_not_ready": sorted(keeper.not_ready),
                    "restore_failures": keeper.restore_failures,
                    "checkpoints_fenced": keeper.fenced_checkpoints,
                    "snapshots_written": keeper.snapshots_written,
                    "replayed_skipped": keeper.replayed_skipped,
                    "rewinds": keeper.rewinds,
                    "halted_partitions": {str(p): error for p, error in sorted(halted.items())},
                }
            )

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # Gauges that need the consumer are refreshed here; the rest are read from the handler while rendering.
            if assigned:  # before the first assignment there is nothing to ask the consumer about
                handler.metrics.consumer_lag = await consumer_lag(app.consumer, assigned, handler.counters.last_offsets)
            # As a header: aiohttp refuses a content_type argument that carries a charset.
            return self.bytes(handler.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    # Any characters, not aiohttp's default of one segment: a symbol may contain '/' (BRK/B); symbol_problem bounds it.
    @app.page("/predictions/{symbol:.+}")
    class Latest(View):
        async def get(self, request: Request, symbol: str) -> Response:
            problem = symbol_problem(symbol)
            if problem is not None:
                return self.json({"error": problem}, status=400)
            state = handler.forecaster.states.get(symbol)
            if state is None or state.last_prediction is None:
                return self.json({"error": f"no prediction for {symbol!r} on worker {settings.worker_id}"}, status=404)
            return self.json(state.last_prediction.to_avro())

    del on_assigned, on_revoked, on_shutdown, checkpoint_idle_partitions, release_freed_memory
    del Health, Stats, Metrics, Latest
    return app, handler


async def consumer_lag(
    consumer: ConsumerT, partitions: Iterable[TP], last_offsets: Mapping[int, int]
) -> dict[int, int]:
    """Lag per assigned partition: the consumer's highwater minus (last processed offset + 1).

    Before this worker has processed anything from a partition, the consumer's fetch
    position stands in for "last processed + 1" (a lower bound: it includes prefetched
    records). Partitions whose highwater is not known yet (no fetch answered) are left out.

    >>> from faust.types import TP
    >>> class Fake:
    ...     def highwater(self, tp): return 50
    ...     async def position(self, tp): return 45
    >>> asyncio.run(consumer_lag(Fake(), [TP("ticks", 0), TP("ticks", 1)], {0: 39}))
    {0: 10, 1: 5}
    """
    lag: dict[int, int] = {}
    for tp in partitions:
        try:
            highwater = consumer.highwater(tp)
            done = last_offsets.get(tp.partition)
            next_offset = (
                done + 1 if done is not None else await asyncio.wait_for(consumer.position(tp), POSITION_TIMEOUT_S)
            )
        except Exception as exc:  # mid-rebalance the consumer may not own tp any more: skip it, keep the scrape
            log.debug("consumer_lag_unavailable", partition=tp.partition, error=repr(exc))
            continue
        value = partition_lag(highwater, next_offset)
        if value is not None:
            lag[tp.partition] = value
    return lag


def snapshot_codec(settings: PredictorSettings) -> SnapshotCodec | None:
    """The signer of this worker's snapshots (bound to its group and ticks topic), or None without a key."""
    keys = settings.verifying_keys
    if not keys:
        return None
    spec = model_spec(settings.model)
    return SnapshotCodec(
        keys[0], spec.name, spec.version, settings.worker_id,
        previous_keys=keys[1:], group=settings.group_id, topic=settings.ticks_topic,
    )  # fmt: skip


def run_worker(settings: PredictorSettings) -> None:
    """Run one predictor worker until SIGTERM/SIGINT; it joins the group and takes its share of partitions."""
    if settings.malloc_arenas:
        limit_malloc_arenas(settings.malloc_arenas)  # before any client starts its threads
    admin = wait_for_broker(settings, timeout_s=30)
    # The same login with Faust's client, whose refusals would otherwise be retried forever or surface as a
    # KeyError deep in aiokafka.
    check_login(settings)
    # Snapshots are keyed by symbol, so compaction keeps exactly the latest state of each (see topic_specs).
    specs = by_role(topic_specs(settings, settings.group_id, settings.snapshots_topic_name))
    create_declared(admin, [specs["snapshots"]])
    del admin
    app, _ = create_app(settings)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        quiet=True,
        # Logging is configured by tickcast (structlog JSON); Faust's own set-up would replace
        # it, and its terminal spinner switches the root logger to DEBUG, which costs throughput.
        override_logging=False,
        redirect_stdouts=False,
    )
    worker.spinner = None
    # Last before the loop runs: what start-up built is frozen, out of every later collection's scan.
    tune_for_throughput(settings.gc_gen0_threshold)
    PROCESS_GC_PAUSES.install()
    worker.execute_from_commandline()
