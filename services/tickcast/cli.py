"""The ``tickcast`` command line: one entry point for every service and tool.

Errors a user can fix (bad settings, unreachable broker, bad file) print one
line naming the problem and exit non-zero; they never print a traceback.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from tickcast.common.logging import configure_logging

app = typer.Typer(help="tickcast: streaming per-symbol price prediction on Kafka.", no_args_is_help=True)
topics_app = typer.Typer(help="Manage tickcast's topics.", no_args_is_help=True)
produce_app = typer.Typer(help="Publish ticks to the ticks topic.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(produce_app, name="produce")

S = TypeVar("S", bound=BaseSettings)


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"tickcast: error: {message}", err=True)
    raise typer.Exit(code)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Settings from TICKCAST_* plus command-line overrides; a bad value is one clear line."""
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"TICKCAST_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        fail(f"invalid configuration: {problems}")
        raise  # unreachable: fail() raises


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the project's known failures into one line and exit code 1."""
    from tickcast.broker.embedded import BrokerStartError
    from tickcast.common.contracts import SchemaError
    from tickcast.common.kafka import BrokerUnavailable, TopicMismatch

    try:
        yield
    except (UserError, BrokerStartError, SchemaError, BrokerUnavailable, TopicMismatch, OSError) as exc:
        fail(str(exc), code=1)


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT (Ctrl-C) ask a loop to finish its current step and exit cleanly."""

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 9092,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, memory only) until Ctrl-C. For development only."""
    from tickcast.broker.embedded import EmbeddedBroker

    configure_logging("broker", "INFO", "console")
    stop = threading.Event()
    _stop_on_signals(stop)
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
    """Create the ticks, predictions and dead-letter topics if missing (and check existing ones)."""
    from tickcast.common.kafka import ensure_topics, wait_for_broker
    from tickcast.common.settings import CommonSettings

    settings = load_settings(CommonSettings, partitions=partitions)
    configure_logging("topics", settings.log_level, settings.log_format)
    with user_errors():
        admin = wait_for_broker(settings.bootstrap_servers, timeout_s=30)
        names = [settings.ticks_topic, settings.predictions_topic, settings.dlq_topic]
        created = ensure_topics(admin, names, settings.partitions, settings.replication_factor)
        for name in names:
            typer.echo(f"{name}: {'created' if name in created else 'exists'} ({settings.partitions} partitions)")


@produce_app.command("synthetic")
def produce_synthetic(
    symbols: Annotated[int, typer.Option(min=1, help="Number of symbols.")] = 24,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same ticks.")] = 42,
    rate: Annotated[float, typer.Option(help="Ticks per second; 0 = as fast as possible.")] = 200.0,
    count: Annotated[int | None, typer.Option(help="Stop after this many ticks.")] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """Publish a reproducible synthetic feed (GBM with AR(1) returns and jumps) at a fixed rate."""
    from tickcast.producer.publisher import TickPublisher, publish_all
    from tickcast.producer.settings import ProducerSettings
    from tickcast.producer.synthetic import SyntheticFeed, symbol_names

    settings = load_settings(ProducerSettings)
    log = configure_logging("producer", settings.log_level, settings.log_format)
    stop = threading.Event()
    _stop_on_signals(stop)
    deadline = time.monotonic() + seconds if seconds else None
    with user_errors():
        _require_broker(settings.bootstrap_servers, settings.connect_timeout_s)
        publisher = TickPublisher(settings)
        feed = SyntheticFeed(symbol_names(symbols), seed, lambda: time.time_ns() // 1_000_000)
        sent = publish_all(
            publisher,
            feed,
            rate=rate,
            limit=count,
            should_stop=lambda: stop.is_set() or (deadline is not None and time.monotonic() > deadline),
        )
        undelivered = publisher.close()
        log.info("producer_done", sent=sent, delivered=publisher.stats.delivered, failed=publisher.stats.failed)
        typer.echo(f"sent={sent} delivered={publisher.stats.delivered} failed={publisher.stats.failed + undelivered}")
        if publisher.stats.failed or undelivered:
            raise typer.Exit(1)


@app.command()
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
        _require_broker(settings.bootstrap_servers, 30.0)
        run_worker(settings)


@app.command()
def subscribe(
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest prediction, not the newest.")] = False,
    count: Annotated[int | None, typer.Option(help="Exit after this many records.")] = None,
    dead_letters: Annotated[bool, typer.Option(help="Also print dead letters.")] = False,
    timeout: Annotated[float | None, typer.Option(help="Exit after this many idle seconds.")] = None,
) -> None:
    """Print predictions as JSON lines (one per tick), for people and scripts."""
    from tickcast.subscriber.reader import PredictionReader
    from tickcast.subscriber.settings import SubscriberSettings

    settings = load_settings(SubscriberSettings)
    configure_logging("subscriber", settings.log_level, settings.log_format)
    with user_errors():
        _require_broker(settings.bootstrap_servers, 30.0)
        reader = PredictionReader(settings, from_beginning=from_beginning, dead_letters=dead_letters)
        seen, idle_since = 0, time.monotonic()
        try:
            while count is None or seen < count:
                batch = reader.poll(timeout_s=0.2)
                if not batch and timeout is not None and time.monotonic() - idle_since > timeout:
                    break
                for received in batch:
                    idle_since = time.monotonic()
                    if received.prediction is not None:
                        record: dict[str, Any] = received.prediction.to_avro()
                    else:
                        record = {
                            "topic": received.topic,
                            "dead_letter": received.dead_letter,
                            "error": received.error,
                        }
                    typer.echo(json.dumps(record, separators=(",", ":")))
                    seen += 1
                    if count is not None and seen >= count:
                        break
        except KeyboardInterrupt:
            pass
        finally:
            reader.close()


@app.command()
def demo(
    seconds: Annotated[float, typer.Option(help="Stop after this many seconds; 0 = until Ctrl-C.")] = 0.0,
    workers: Annotated[int, typer.Option(min=1, help="Predictor worker processes.")] = 2,
    symbols: Annotated[int, typer.Option(min=1, help="Synthetic symbols.")] = 24,
    rate: Annotated[float, typer.Option(min=1.0, help="Ticks per second.")] = 300.0,
    model: Annotated[str, typer.Option(help="Model name.")] = "linear",
    log_dir: Annotated[Path, typer.Option(help="Where broker and worker logs go.")] = Path(".tickcast/demo"),
) -> None:
    """Start the embedded broker, N workers and a synthetic feed; show live predictions; stop cleanly."""
    from tickcast.demo.run import DemoOptions, run_demo
    from tickcast.predictor.models import MODELS

    if model not in MODELS:
        fail(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    configure_logging("demo", "WARNING", "console")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops the demo as cleanly as Ctrl-C
    with user_errors():
        result = run_demo(
            DemoOptions(seconds=seconds, workers=workers, symbols=symbols, rate=rate, model=model, log_dir=log_dir)
        )
    typer.echo(result.summary_line())


def _require_broker(bootstrap_servers: str, timeout_s: float) -> None:
    from tickcast.common.kafka import wait_for_broker

    wait_for_broker(bootstrap_servers, timeout_s=timeout_s)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``tickcast`` console script."""
    app(args=argv, prog_name="tickcast")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
