"""The ``tickcast`` command line: one entry point for every service and tool.

Errors a user can fix (bad settings, unreachable broker, bad file) print one
line naming the problem and exit non-zero; they never print a traceback.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from enum import StrEnum
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
dlq_app = typer.Typer(help="Inspect and replay dead letters (ticks the workers refused).", no_args_is_help=True)
app.add_typer(produce_app, name="produce")
app.add_typer(dlq_app, name="dlq")

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


class OnError(StrEnum):
    skip = "skip"
    stop = "stop"


# The column mapping of a tick file, shared by `produce file` and `evaluate`.
TickFile = Annotated[Path, typer.Argument(help="CSV file, plain or gzip.")]
TimeCol = Annotated[str, typer.Option(help="Column of the event time.")]
SymbolCol = Annotated[str, typer.Option(help="Column of the symbol.")]
PriceCol = Annotated[str, typer.Option(help="Column of the price.")]
SizeCol = Annotated[str | None, typer.Option(help="Column of the size; omit for none.")]
VenueCol = Annotated[str | None, typer.Option(help="Column of the venue code.")]
ConditionCol = Annotated[str | None, typer.Option(help="Column of the trade condition code.")]
ConstantSymbol = Annotated[str | None, typer.Option(help="Constant symbol, for files of one instrument.")]
TimeFormat = Annotated[str, typer.Option(help="iso, epoch_s, epoch_ms, epoch_us, or a strptime pattern.")]
TimeZone = Annotated[str, typer.Option(help="IANA zone of naive times, e.g. America/New_York.")]


def _column_mapping(
    time_col: str, symbol_col: str, price_col: str, size_col: str | None, venue_col: str | None,
    condition_col: str | None, symbol: str | None, time_format: str, timezone: str,
) -> Any:  # fmt: skip
    from tickcast.producer.replay import ColumnMapping

    try:
        return ColumnMapping(
            time=time_col, symbol=None if symbol else symbol_col, price=price_col, size=size_col,
            venue=venue_col, condition=condition_col, constant_symbol=symbol, time_format=time_format,
            timezone=timezone,
        )  # fmt: skip
    except ValueError as exc:
        fail(str(exc))


@produce_app.command("file")
def produce_file(
    path: TickFile,
    time_col: TimeCol = "ts_et",
    symbol_col: SymbolCol = "symbol",
    price_col: PriceCol = "price",
    size_col: SizeCol = "size",
    venue_col: VenueCol = None,
    condition_col: ConditionCol = None,
    symbol: ConstantSymbol = None,
    time_format: TimeFormat = "iso",
    timezone: TimeZone = "UTC",
    speed: Annotated[float, typer.Option(help="Replay speed as a multiple of real time; 0 = as fast as possible.")] = 0,
    on_error: Annotated[OnError, typer.Option(help="skip: report bad rows and go on; stop: exit at the first.")] = (
        OnError.skip
    ),
    limit: Annotated[int | None, typer.Option(help="Send at most this many ticks.")] = None,
) -> None:
    """Replay ticks from a CSV file; bad rows are reported with file, line, column and value."""
    from tickcast.producer.publisher import TickPublisher
    from tickcast.producer.replay import ReplayError, ReplaySummary, paced, read_ticks
    from tickcast.producer.settings import ProducerSettings

    settings = load_settings(ProducerSettings)
    log = configure_logging("producer", settings.log_level, settings.log_format)
    mapping = _column_mapping(
        time_col, symbol_col, price_col, size_col, venue_col, condition_col, symbol, time_format, timezone
    )
    stop = threading.Event()
    _stop_on_signals(stop)
    summary = ReplaySummary()
    with user_errors():
        try:
            rows = read_ticks(path, mapping)
        except ReplayError as exc:
            raise UserError(str(exc)) from exc
        _require_broker(settings.bootstrap_servers, settings.connect_timeout_s)
        publisher = TickPublisher(settings)
        good = _report_bad_rows(rows, summary, stop_at_first=on_error is OnError.stop)
        try:
            for tick in paced(good, speed or None):
                if stop.is_set() or (limit is not None and summary.sent >= limit):
                    break
                publisher.publish(tick)
                summary.sent += 1
        except ReplayError as exc:
            raise UserError(str(exc)) from exc
        finally:
            undelivered = publisher.close()
        log.info("replay_done", sent=summary.sent, skipped=dict(summary.skipped), undelivered=undelivered)
        typer.echo(summary.line())
        if summary.skipped and on_error is OnError.stop:
            raise typer.Exit(1)
        if undelivered or publisher.stats.failed:
            fail(f"{undelivered + publisher.stats.failed} ticks were not delivered: {publisher.stats.last_error}", 1)


def _report_bad_rows(rows: Iterator[Any], summary: Any, stop_at_first: bool) -> Iterator[Any]:
    """Pass ticks through; print each bad row on stderr (the first 20, then a count) and tally it."""
    from tickcast.producer.replay import RowError

    for row in rows:
        if isinstance(row, RowError):
            summary.record_error(row)
            shown = sum(summary.skipped.values())
            if shown <= 20:
                typer.echo(f"tickcast: bad row: {row}", err=True)
            if stop_at_first:
                return
            continue
        yield row


@app.command()
def evaluate(
    path: TickFile,
    model: Annotated[
        list[str] | None, typer.Option(help="Model to score (repeatable); default: every registered model.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of cumulative skill over time per symbol.")] = None,
    limit: Annotated[int | None, typer.Option(help="Score at most this many ticks.")] = None,
    time_col: TimeCol = "ts_et",
    symbol_col: SymbolCol = "symbol",
    price_col: PriceCol = "price",
    size_col: SizeCol = "size",
    symbol: ConstantSymbol = None,
    time_format: TimeFormat = "iso",
    timezone: TimeZone = "UTC",
) -> None:
    """Replay a tick file through the worker's own feature and model code (no broker) and score the forecasts.

    Per symbol and overall: RMSE, RMSE skill vs persistence, directional accuracy on non-zero moves, MAE,
    outlier share and ticks/s, for each model side by side with the baselines.
    """
    import itertools

    from rich.console import Console

    from tickcast.evaluation import evaluate as run_evaluation
    from tickcast.evaluation.plot import plot_skill
    from tickcast.predictor.models import MODELS
    from tickcast.producer.replay import ReplayError, ReplaySummary, read_ticks

    names = model or list(MODELS)
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        fail(f"unknown model(s) {', '.join(unknown)}; choose from: {', '.join(MODELS)}")
    mapping = _column_mapping(time_col, symbol_col, price_col, size_col, None, None, symbol, time_format, timezone)
    summary = ReplaySummary()
    with user_errors():
        try:
            good = _report_bad_rows(read_ticks(path, mapping), summary, stop_at_first=False)
            report = run_evaluation(itertools.islice(good, limit), names)
        except ReplayError as exc:
            raise UserError(str(exc)) from exc
        if as_json:
            typer.echo(report.to_json())
        else:
            # Piped output gets a wide table instead of rich's 80-column default.
            Console(width=None if sys.stdout.isatty() else 180).print(report.render_table())
            if sum(summary.skipped.values()):
                typer.echo(f"skipped rows: {summary.line()}", err=True)
        if plot is not None:
            typer.echo(f"wrote {plot_skill(report, plot)}", err=True)


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


@dlq_app.command("list")
def dlq_list(
    reason: Annotated[list[str] | None, typer.Option(help="Only these reason codes (repeatable).")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List dead letters: where each came from, why it was refused, and its handle (partition:offset)."""
    from rich.console import Console
    from rich.table import Table

    from tickcast.ops.dlq import select

    letters = select(_dead_letters(), set(reason) if reason else None, None)
    if as_json:
        for letter in letters[:limit]:
            typer.echo(json.dumps({"ref": letter.ref, "key": (letter.key or b"").decode("utf-8", "replace"),
                                   **letter.headers}))  # fmt: skip
        return
    table = Table(title=f"dead letters ({len(letters)} matching)")
    for column in ("ref", "reason", "message", "source", "worker"):
        table.add_column(column)
    for letter in letters[:limit]:
        h = letter.headers
        source = f"{h.get('source.topic', '?')}:{h.get('source.partition', '?')}:{h.get('source.offset', '?')}"
        table.add_row(letter.ref, letter.reason, letter.message, source, h.get("worker", ""))
    Console().print(table)


@dlq_app.command("summary")
def dlq_summary() -> None:
    """Dead letters counted by reason, one `reason=count` per line, then the total."""
    from tickcast.ops.dlq import summarise

    counts = summarise(_dead_letters())
    for name, count in sorted(counts.items()):
        typer.echo(f"{name}={count}")
    typer.echo(f"total={sum(counts.values())}")


@dlq_app.command("replay")
def dlq_replay(
    reason: Annotated[list[str] | None, typer.Option(help="Replay letters with these reason codes.")] = None,
    ref: Annotated[list[str] | None, typer.Option(help="Replay these letters (partition:offset, repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be replayed.")] = False,
) -> None:
    """Send chosen dead letters, bytes untouched, back to the ticks topic (after the cause is fixed)."""
    from tickcast.ops.dlq import replay_headers, select
    from tickcast.producer.publisher import TickPublisher
    from tickcast.producer.settings import ProducerSettings

    if not reason and not ref:
        fail("say which letters to replay: --reason CODE and/or --ref PARTITION:OFFSET")
    settings = load_settings(ProducerSettings)
    letters = select(_dead_letters(), set(reason) if reason else None, set(ref) if ref else None)
    if dry_run:
        typer.echo(f"would replay {len(letters)} dead letters to {settings.ticks_topic}")
        return
    with user_errors():
        publisher = TickPublisher(settings)
        for letter in letters:
            publisher.publish_raw(letter.key, letter.value, replay_headers(letter, settings.dlq_topic))
        undelivered = publisher.close()
    typer.echo(f"replayed={len(letters) - undelivered} to={settings.ticks_topic}")
    if undelivered:
        raise typer.Exit(1)


def _dead_letters() -> list[Any]:
    from tickcast.common.settings import CommonSettings
    from tickcast.ops.dlq import read_dead_letters

    settings = load_settings(CommonSettings)
    configure_logging("dlq", settings.log_level, settings.log_format)
    with user_errors():
        _require_broker(settings.bootstrap_servers, 30.0)
        try:
            return read_dead_letters(settings)
        except (LookupError, TimeoutError, RuntimeError) as exc:
            raise UserError(str(exc)) from exc
    return []


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


def _register_ops() -> None:
    # Ops commands (lag, supervise, scale, autoscale) live in their own module; it imports helpers from here.
    from tickcast.cli_ops import register

    register(app)


_register_ops()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``tickcast`` console script."""
    app(args=argv, prog_name="tickcast")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
