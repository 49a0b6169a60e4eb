"""``tickcast produce``: publish ticks to the ticks topic, from a synthetic feed or a CSV file."""

from __future__ import annotations

import itertools
import threading
import time
from enum import StrEnum
from typing import Annotated

import typer

from tickcast.cli.common import UserError, fail, finite, load_settings, require_broker, stop_on_signals, user_errors
from tickcast.cli.tick_files import (
    ConditionCol,
    ConstantSymbol,
    PriceCol,
    SizeCol,
    SymbolCol,
    TickFile,
    TimeCol,
    TimeFormat,
    TimeZone,
    VenueCol,
    column_mapping,
    report_bad_rows,
)
from tickcast.common.logging import configure_logging

#: A synthetic feed's symbols: the gateway's default TICKCAST_GATEWAY_MAX_SYMBOLS. The names are built as one
#: list before the first tick, so a mistyped count (10**9) would otherwise grow it until the memory runs out.
MAX_SYNTHETIC_SYMBOLS = 100_000

produce_app = typer.Typer(help="Publish ticks to the ticks topic.", no_args_is_help=True)


@produce_app.command("synthetic")
def produce_synthetic(
    symbols: Annotated[
        int,
        typer.Option(min=1, max=MAX_SYNTHETIC_SYMBOLS, help=f"Number of symbols (at most {MAX_SYNTHETIC_SYMBOLS:,})."),
    ] = 24,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same ticks.")] = 42,
    rate: Annotated[float, typer.Option(min=0, callback=finite, help="Ticks per second; 0 = as fast as possible.")] = (
        200.0
    ),
    count: Annotated[int | None, typer.Option(min=0, help="Stop after this many ticks.")] = None,
    seconds: Annotated[float | None, typer.Option(min=0, callback=finite, help="Stop after this many seconds.")] = None,
) -> None:
    """Publish a reproducible synthetic feed (GBM with AR(1) returns and jumps) at a fixed rate."""
    from tickcast.producer.publisher import TickPublisher, publish_all
    from tickcast.producer.settings import ProducerSettings
    from tickcast.producer.synthetic import SyntheticFeed, symbol_names

    settings = load_settings(ProducerSettings)
    log = configure_logging("producer", settings.log_level, settings.log_format)
    stop = threading.Event()
    stop_on_signals(stop)
    deadline = time.monotonic() + seconds if seconds is not None else None  # 0 is a deadline too, like --count 0
    with user_errors():
        require_broker(settings, settings.connect_timeout_s)
        publisher = TickPublisher(settings)
        feed = SyntheticFeed(symbol_names(symbols), seed, lambda: time.time_ns() // 1_000_000)
        sent = publish_all(
            publisher,
            feed,
            rate=rate,
            limit=count,
            should_stop=lambda: stop.is_set() or (deadline is not None and time.monotonic() > deadline),
            sleep=stop.wait,  # a signal ends a wait between ticks at once (see produce_file)
            warm_up_timeout_s=settings.connect_timeout_s,
        )
        undelivered = publisher.close()
        log.info("producer_done", sent=sent, delivered=publisher.stats.delivered, failed=publisher.stats.failed)
        typer.echo(f"sent={sent} delivered={publisher.stats.delivered} failed={publisher.stats.failed + undelivered}")
        if publisher.stats.failed or undelivered:
            raise typer.Exit(1)


class OnError(StrEnum):
    skip = "skip"
    stop = "stop"


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
    speed: Annotated[
        float,
        typer.Option(min=0, callback=finite, help="Replay speed as a multiple of real time; 0 = as fast as possible."),
    ] = 0,
    on_error: Annotated[OnError, typer.Option(help="skip: report bad rows and go on; stop: exit at the first.")] = (
        OnError.skip
    ),
    limit: Annotated[int | None, typer.Option(min=0, help="Send at most this many ticks.")] = None,
) -> None:
    """Replay ticks from a CSV file; bad rows are reported with file, line, column and value."""
    from tickcast.producer.publisher import TickPublisher
    from tickcast.producer.replay import paced, read_ticks
    from tickcast.producer.row_errors import ReplayError, ReplaySummary
    from tickcast.producer.settings import ProducerSettings

    settings = load_settings(ProducerSettings)
    log = configure_logging("producer", settings.log_level, settings.log_format)
    mapping = column_mapping(
        time_col, symbol_col, price_col, size_col, venue_col, condition_col, symbol, time_format, timezone
    )
    stop = threading.Event()
    stop_on_signals(stop)
    summary = ReplaySummary()
    with user_errors():
        try:
            rows = read_ticks(path, mapping)
        except ReplayError as exc:
            raise UserError(str(exc)) from exc
        require_broker(settings, settings.connect_timeout_s)
        publisher = TickPublisher(settings)
        # The limit cuts the rows before pacing: checked in the loop, the replay would first wait for a tick
        # beyond it (hours, across a night's gap) only to drop it.
        good = itertools.islice(report_bad_rows(rows, summary, stop_at_first=on_error is OnError.stop), limit)
        cut_short: ReplayError | None = None
        try:
            # Waiting on the stop event, not time.sleep: a signal ends a wait (hours across a night's gap at
            # --speed 1) at once, where a sleep resumes after the handler and Ctrl-C would seem ignored.
            for tick in paced(good, speed or None, sleep=stop.wait):
                if stop.is_set():
                    break
                publisher.publish(tick)
                if summary.sent == 0 and speed:
                    # A paced replay's clock starts after this (``paced``): no tick waits for the warm-up.
                    publisher.wait_delivered(settings.connect_timeout_s)
                summary.sent += 1
        except ReplayError as exc:
            cut_short = exc  # a file that ends mid-way: what went out before it is still said below
        finally:
            undelivered = publisher.close()
        skipped = {str(reason): count for reason, count in summary.skipped.items()}
        log.info("replay_done", sent=summary.sent, skipped=skipped, undelivered=undelivered)
        typer.echo(summary.line())
        if cut_short is not None:
            raise UserError(str(cut_short))
        if summary.skipped and on_error is OnError.stop:
            raise typer.Exit(1)
        if undelivered or publisher.stats.failed:
            fail(f"{undelivered + publisher.stats.failed} ticks were not delivered: {publisher.stats.last_error}", 1)
