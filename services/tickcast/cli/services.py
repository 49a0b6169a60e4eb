"""Commands that run the pipeline's parts: ``broker``, ``topics``, ``worker``, ``gateway``, ``subscribe``, ``demo``."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tickcast.cli.common import fail, finite, load_settings, require_broker, stop_on_signals, user_errors
from tickcast.common.logging import configure_logging
from tickcast.demo import (
    DEMO_FEED_LINGER_MS,
    DEMO_PARTITIONS,
    DEMO_TOPOLOGY,
    DEMO_VIEW_FETCH_WAIT_MS,
    DEMO_WORKER_FETCH_WAIT_MS,
    DEMO_WORKER_LINGER_MS,
)

if TYPE_CHECKING:
    from tickcast.client.settings import ClientSettings
    from tickcast.common.settings import CommonSettings

topics_app = typer.Typer(help="Manage tickcast's topics.", no_args_is_help=True)


def broker(
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 9092,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, memory only) until Ctrl-C. For development only."""
    from tickcast.broker.embedded import EmbeddedBroker

    configure_logging("broker", "INFO", "console")
    stop = threading.Event()
    stop_on_signals(stop)
    with user_errors(), EmbeddedBroker(port=port, host=host) as running:
        typer.echo(f"TICKCAST_BOOTSTRAP_SERVERS={running.bootstrap_servers}")
        with suppress(KeyboardInterrupt):
            while not stop.wait(0.5):
                if running.process is not None and running.process.poll() is not None:
                    fail(f"broker exited with code {running.process.returncode}", code=1)


@topics_app.command("create")
def topics_create(
    partitions: Annotated[int | None, typer.Option(help="Partitions (default TICKCAST_PARTITIONS).")] = None,
) -> None:
    """Create the ticks, predictions, dead-letter, receipts, model-events and snapshots topics, if missing."""
    from tickcast.common.kafka import wait_for_broker
    from tickcast.common.topic_admin import create_declared

    settings, specs = _declared_topics(partitions)
    with user_errors():
        admin = wait_for_broker(settings, timeout_s=30)
        created = create_declared(admin, specs)
        for spec in specs:
            configs = ", ".join(f"{k}={v}" for k, v in spec.configs.items())
            state = "created" if spec.name in created else "exists"
            typer.echo(f"{spec.name}: {state} ({spec.partitions} partitions, {configs})")


@topics_app.command("check")
def topics_check(
    partitions: Annotated[int | None, typer.Option(help="Partitions (default TICKCAST_PARTITIONS).")] = None,
) -> None:
    """Report drift between the cluster's topics and their declared partitions and configs; exit 1 on drift."""
    from tickcast.common.kafka import wait_for_broker
    from tickcast.common.topic_admin import EMBEDDED_IGNORES, find_drift, is_embedded, split_ignored

    settings, specs = _declared_topics(partitions)
    with user_errors():
        admin = wait_for_broker(settings, timeout_s=30)
        drifts = find_drift(admin, specs)
        missing = {d.topic for d in drifts if d.what == "the topic"}
        present = [s.name for s in specs if s.name not in missing]
        embedded = bool(present) and is_embedded(admin, present[0])
        real, ignored = split_ignored(drifts, embedded)
        if embedded:
            typer.echo(
                "embedded broker (Tansu, memory only): it accepts but does not enforce "
                f"{', '.join(sorted(EMBEDDED_IGNORES))}; Apache Kafka does"
            )
        for drift in ignored:
            typer.echo(f"ignored by the embedded broker: {drift}")
        for drift in real:
            typer.echo(f"DRIFT {drift}", err=True)
        if real:
            fail(f"{len(real)} topic(s) or config(s) differ from the declared ones", code=1)
        typer.echo(f"topics: as declared ({', '.join(s.name for s in specs)})")


def _declared_topics(partitions: int | None) -> tuple[Any, list[Any]]:
    from tickcast.common.topic_specs import topic_specs
    from tickcast.predictor.settings import PredictorSettings

    # The predictor's settings: the snapshots topic is named after its group.
    settings = load_settings(PredictorSettings, partitions=partitions)
    configure_logging("topics", settings.log_level, settings.log_format)
    return settings, topic_specs(settings, settings.group_id, settings.snapshots_topic_name)


def require_partitions(settings: CommonSettings, *roles: str) -> None:
    """Wait for the broker; raise ``TopicMismatch`` if a topic of ``roles`` has another count than configured."""
    from tickcast.common.kafka import wait_for_broker
    from tickcast.common.topic_admin import check_partition_counts
    from tickcast.common.topic_specs import by_role, topic_specs

    admin = wait_for_broker(settings, timeout_s=30.0)
    specs = by_role(topic_specs(settings))
    check_partition_counts(admin, [specs[role] for role in roles])


def worker(
    model: Annotated[str | None, typer.Option(help="Model name (default TICKCAST_MODEL).")] = None,
    web_port: Annotated[int | None, typer.Option(help="HTTP port (default TICKCAST_WEB_PORT).")] = None,
) -> None:
    """Run one predictor worker; start it as many times as you like, the group shares the partitions."""
    from tickcast.predictor.app import run_worker
    from tickcast.predictor.settings import PredictorSettings

    settings = load_settings(PredictorSettings, model=model, web_port=web_port)
    configure_logging("predictor", settings.log_level, settings.log_format)
    with user_errors():
        # Before joining the group: partitions added to ticks on a live cluster would otherwise surface as
        # predictions sent to partitions the predictions topic lacks.
        require_partitions(settings, "ticks", "predictions")
        run_worker(settings)


def gateway(
    port: Annotated[int | None, typer.Option(help="HTTP port (default TICKCAST_GATEWAY_PORT, 8080).")] = None,
    host: Annotated[str | None, typer.Option(help="Interface (default TICKCAST_GATEWAY_HOST, 127.0.0.1).")] = None,
) -> None:
    """Serve latest predictions, an SSE stream and the live dashboard over HTTP (HTTPS with a certificate); run as
    many as you like."""
    from tickcast.gateway.server import run_gateway
    from tickcast.gateway.settings import GatewaySettings
    from tickcast.gateway.tls import load_tls

    settings = load_settings(GatewaySettings, gateway_port=port, gateway_host=host)
    configure_logging("gateway", settings.log_level, settings.log_format)
    with user_errors():
        if settings.gateway_clients_file is not None:
            from tickcast.gateway.auth import Clients

            Clients.load(settings.gateway_clients_file)  # a bad file stops here, before the broker is waited for
        tls = load_tls(settings)  # so does a bad certificate or key
        # The gateway reads partitions 0 to TICKCAST_PARTITIONS - 1: more would go unread, fewer never end.
        require_partitions(settings, "predictions")
        typer.echo(f"dashboard: {settings.gateway_scheme}://{settings.gateway_host}:{settings.gateway_port}/", err=True)
        run_gateway(settings, tls)


def subscribe(
    from_beginning: Annotated[
        bool, typer.Option(help="Start at the oldest prediction, not the newest (Kafka only).")
    ] = False,
    count: Annotated[int | None, typer.Option(min=0, help="Exit after this many records.")] = None,
    dead_letters: Annotated[bool, typer.Option(help="Also print dead letters (reads Kafka).")] = False,
    timeout: Annotated[
        float | None, typer.Option(min=0, callback=finite, help="Exit after this many idle seconds.")
    ] = None,
    symbols: Annotated[str | None, typer.Option(help="Only these symbols, comma-separated (default: all).")] = None,
    gateway: Annotated[
        str | None, typer.Option(help="Read a gateway's stream at this URL (default TICKCAST_CLIENT_GATEWAY_URL).")
    ] = None,
) -> None:
    """Print predictions as JSON lines (one per tick), for people and scripts; each tick's prediction once."""
    from tickcast.client.settings import ClientSettings

    settings = load_settings(ClientSettings, client_gateway_url=gateway)
    configure_logging("subscriber", settings.log_level, settings.log_format)
    wanted = [name.strip() for name in symbols.split(",") if name.strip()] if symbols else None
    with user_errors():
        if dead_letters:
            _print_with_dead_letters(from_beginning, count, timeout, wanted)
            return
        if settings.client_gateway_url is None:
            require_broker(settings, 30.0)
        elif from_beginning:
            fail("--from-beginning reads Kafka: a gateway streams from now on (it keeps the latest per symbol)")
        try:
            asyncio.run(_print_predictions(settings, from_beginning, count, timeout, wanted))
        except ValueError as exc:
            fail(str(exc), code=1)
        except KeyboardInterrupt:
            pass


async def _print_predictions(
    settings: ClientSettings, from_beginning: bool, count: int | None, timeout: float | None, symbols: list[str] | None
) -> None:
    from tickcast.client import TickcastClient
    from tickcast.client.sources import GatewaySource

    client = TickcastClient.from_settings(settings, from_beginning=from_beginning)
    if isinstance(client.source, GatewaySource):
        # As a broker that never answers is one line (require_broker), so is a gateway URL that never answers.
        await client.source.wait_reachable(30.0 if timeout is None else timeout)
    seen = 0
    async for record in client.subscribe(symbols, idle_timeout_s=timeout):
        typer.echo(json.dumps(record.to_avro(), separators=(",", ":")))
        seen += 1
        if count is not None and seen >= count:
            break


def _print_with_dead_letters(
    from_beginning: bool, count: int | None, timeout: float | None, symbols: list[str] | None
) -> None:
    from tickcast.common.validation import SYMBOL_PATTERN
    from tickcast.subscriber.reader import PredictionReader
    from tickcast.subscriber.settings import SubscriberSettings

    for name in symbols or ():
        if not SYMBOL_PATTERN.fullmatch(name):
            fail(f"symbol {name[:40]!r} does not match {SYMBOL_PATTERN.pattern}", code=1)
    keep = None if symbols is None else frozenset(symbols)
    settings = load_settings(SubscriberSettings)
    require_broker(settings, 30.0)
    reader = PredictionReader(settings, from_beginning=from_beginning, dead_letters=True)
    seen, idle_since = 0, time.monotonic()
    try:
        while count is None or seen < count:
            batch = reader.poll(timeout_s=0.2)
            if not batch and timeout is not None and time.monotonic() - idle_since > timeout:
                break
            for received in batch:
                idle_since = time.monotonic()
                if received.prediction is not None:
                    if keep is not None and received.prediction.symbol not in keep:
                        reader.done(received)
                        continue
                    record: dict[str, Any] = received.prediction.to_avro()
                else:
                    if keep is not None and received.dead_letter is not None and received.key not in keep:
                        reader.done(received)
                        continue
                    record = {
                        "topic": received.topic,
                        "key": received.key,
                        "dead_letter": received.dead_letter,
                        "error": received.error,
                    }
                typer.echo(json.dumps(record, separators=(",", ":")))
                reader.done(received)
                seen += 1
                if count is not None and seen >= count:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()


def demo(
    seconds: Annotated[
        float, typer.Option(min=0, callback=finite, help="Stop after this many seconds; 0 = until Ctrl-C.")
    ] = 0.0,
    workers: Annotated[int, typer.Option(min=1, help="Predictor worker processes.")] = 2,
    symbols: Annotated[int, typer.Option(min=1, help="Synthetic symbols.")] = 24,
    rate: Annotated[float, typer.Option(min=1.0, help="Ticks per second.")] = 300.0,
    model: Annotated[str, typer.Option(help="Model name.")] = "linear",
    log_dir: Annotated[Path, typer.Option(help="Where broker and worker logs go.")] = Path(".tickcast/demo"),
    gateway_port: Annotated[int, typer.Option(min=0, max=65535, help="Dashboard port; 0 picks a free one.")] = 8080,
    feed_linger_ms: Annotated[
        int, typer.Option(min=0, max=1000, help="The feed's producer linger: each tick waits up to this to be sent.")
    ] = DEMO_FEED_LINGER_MS,
    view_fetch_wait_ms: Annotated[
        int,
        typer.Option(min=1, max=5000, help="The live view's fetch wait; the embedded broker holds fetches this long."),
    ] = DEMO_VIEW_FETCH_WAIT_MS,
    worker_fetch_wait_ms: Annotated[
        int,
        typer.Option(min=1, max=5000, help="The workers' fetch wait (TICKCAST_FETCH_MAX_WAIT_MS wins if set)."),
    ] = DEMO_WORKER_FETCH_WAIT_MS,
    worker_linger_ms: Annotated[
        int, typer.Option(min=0, max=1000, help="The workers' producer linger (TICKCAST_LINGER_MS wins if set).")
    ] = DEMO_WORKER_LINGER_MS,
    topology: Annotated[
        str,
        typer.Option(
            help="split: the workers on the last core, the broker, gateway, feed and view on the others (Linux, "
            "2+ CPUs; as in production, where the broker has its own machines); shared: every process on every core."
        ),
    ] = DEMO_TOPOLOGY,
    partitions: Annotated[
        int, typer.Option(min=1, max=1000, help="Partitions of the demo's topics (TICKCAST_PARTITIONS is not read).")
    ] = DEMO_PARTITIONS,
) -> None:
    """Start the embedded broker, N workers, a gateway (live dashboard) and a synthetic feed; stop cleanly."""
    from tickcast.demo.run import DemoOptions, run_demo
    from tickcast.predictor.models import MODELS

    if model not in MODELS:
        fail(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    if topology not in ("split", "shared"):
        fail(f"unknown topology {topology!r}; choose split or shared")
    configure_logging("demo", "WARNING", "console")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops the demo as cleanly as Ctrl-C
    with user_errors():
        result = run_demo(
            DemoOptions(
                seconds=seconds,
                workers=workers,
                symbols=symbols,
                rate=rate,
                model=model,
                log_dir=log_dir,
                gateway_port=gateway_port,
                feed_linger_ms=feed_linger_ms,
                view_fetch_wait_ms=view_fetch_wait_ms,
                worker_fetch_wait_ms=worker_fetch_wait_ms,
                worker_linger_ms=worker_linger_ms,
                topology=topology,
                partitions=partitions,
            )
        )
    typer.echo(result.summary_line())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
