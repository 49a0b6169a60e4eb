"""Ops commands: ``lag``, ``supervise``, ``scale`` and ``autoscale`` (the local supervisor and its autoscaler)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from tickcast.cli.common import UserError, finite, load_settings, require_broker, stop_on_signals, user_errors
from tickcast.common.logging import configure_logging

StateDirOption = Annotated[
    Path | None,
    typer.Option(help="State directory of the local supervisor (default TICKCAST_STATE_DIR, .tickcast/supervisor)."),
]
GroupOption = Annotated[str | None, typer.Option(help="Consumer group of the workers (default TICKCAST_GROUP_ID).")]
#: Width of `tickcast lag` tables written to a pipe or file (a terminal's own width is used otherwise).
PIPED_WIDTH = 200


@contextmanager
def _ops_errors() -> Iterator[None]:
    """The ops tools' known failures as one-line user errors (use inside :func:`user_errors`)."""
    from confluent_kafka import KafkaException

    from tickcast.ops.autoscale.errors import ConfigError
    from tickcast.ops.control import SupervisorAlreadyRunning, SupervisorNotRunning

    try:
        yield
    except (LookupError, ConfigError, SupervisorAlreadyRunning, SupervisorNotRunning) as exc:
        raise UserError(str(exc)) from exc
    except KafkaException as exc:
        raise UserError(f"Kafka request failed: {exc.args[0] if exc.args else exc}") from exc


def _http_urls(urls: list[str] | None) -> list[str] | None:
    for url in urls or ():
        if not url.startswith(("http://", "https://")):
            raise typer.BadParameter(f"{url[:64]!r} is not an http(s) URL (e.g. http://127.0.0.1:6066/stats)")
    return urls


def lag(
    watch: Annotated[bool, typer.Option("--watch", help="Report again every --interval seconds until Ctrl-C.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per report instead of a table.")] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, callback=finite, help="Seconds between reports with --watch.")
    ] = 2.0,
    stats_url: Annotated[
        list[str] | None,
        typer.Option(
            callback=_http_urls, help="A worker's /stats URL, to learn which partitions it owns (repeatable)."
        ),
    ] = None,
    state_dir: StateDirOption = None,
    group: GroupOption = None,
) -> None:
    """Lag of the predictor group on the ticks topic: committed and end offset, lag and owner per partition.

    Owners come from the group (Apache Kafka), the workers of a local supervisor, and any --stats-url.
    On the embedded broker the lag is exact only if each record was produced as its own batch.
    """
    from rich.console import Console

    from tickcast.ops.control import read_status, supervisor_running
    from tickcast.ops.lag import LagReader, lag_table, report_to_dict
    from tickcast.ops.settings import OpsSettings

    settings = load_settings(OpsSettings, group_id=group, state_dir=state_dir)
    configure_logging("lag", settings.log_level, settings.log_format)
    stop = threading.Event()
    if watch:
        stop_on_signals(stop)
    # Piped output gets a wide table, so long owner names (Kafka member ids) are not wrapped at 80 columns.
    console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
    with user_errors(), _ops_errors():
        require_broker(settings, settings.admin_timeout_s)
        reader = LagReader(
            settings,
            settings.ticks_topic,
            settings.group_id,
            stats_urls=stats_url or [],
            timeout_s=settings.admin_timeout_s,
        )
        try:
            while True:
                status = read_status(settings.state_dir) if supervisor_running(settings.state_dir) else None
                report = reader.read([w.stats_url for w in status.workers] if status else [])
                if as_json:
                    typer.echo(json.dumps(report_to_dict(report), separators=(",", ":")))
                else:
                    console.print(lag_table(report))
                    if watch:
                        console.print()
                if not watch or stop.wait(interval):
                    break
        finally:
            reader.close()


def supervise(
    workers: Annotated[
        int | None, typer.Option(min=0, help="Workers to start with (default: the last requested count, else 1).")
    ] = None,
    state_dir: StateDirOption = None,
) -> None:
    """Run predictor workers on this machine and keep the requested number running until Ctrl-C.

    Change the count from another terminal with `tickcast scale N` (or let `tickcast autoscale` do it).
    Workers share this process's TICKCAST_* settings; their logs go to STATE_DIR/logs.
    """
    from tickcast.common.processes import current_env
    from tickcast.ops.settings import OpsSettings
    from tickcast.ops.supervisor import run_supervisor

    settings = load_settings(OpsSettings, state_dir=state_dir)
    configure_logging("supervisor", settings.log_level, settings.log_format)
    if workers is not None and workers > settings.partitions:
        typer.echo(
            f"tickcast: warning: {workers} workers for {settings.partitions} partitions: some will idle", err=True
        )
    stop = threading.Event()
    stop_on_signals(stop)
    with user_errors(), _ops_errors():
        require_broker(settings, 30.0)
        run_supervisor(settings.state_dir, current_env(), stop, initial_workers=workers)


def scale(
    workers: Annotated[int, typer.Argument(min=0, help="How many workers should run.")],
    state_dir: StateDirOption = None,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds to wait until they run and answer.")] = 120.0,
) -> None:
    """Tell the running `tickcast supervise` how many workers to run, and wait until they do."""
    from tickcast.ops.control import request_scale
    from tickcast.ops.settings import OpsSettings

    settings = load_settings(OpsSettings, state_dir=state_dir)
    if workers > settings.partitions:
        typer.echo(
            f"tickcast: warning: {workers} workers for {settings.partitions} partitions: some will idle", err=True
        )
    with user_errors(), _ops_errors():
        status = request_scale(settings.state_dir, workers, timeout_s=timeout)
    typer.echo(status.describe())


def autoscale(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print the decisions and their reasons.")] = False,
    schedule: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Autoscale config (TOML; see tickcast.ops.autoscale). Default: built in."
        ),
    ] = None,
    interval: Annotated[float, typer.Option(min=0.1, callback=finite, help="Seconds between decisions.")] = 10.0,
    min_workers: Annotated[int | None, typer.Option("--min", min=1, help="Floor, replacing the schedule's.")] = None,
    max_workers: Annotated[int | None, typer.Option("--max", min=1, help="Ceiling, replacing the schedule's.")] = None,
    per_worker_rate: Annotated[
        float | None, typer.Option(min=0.001, callback=finite, help="Ticks/s one worker sustains.")
    ] = None,
    drain_target: Annotated[
        float | None, typer.Option(min=0.001, callback=finite, help="Seconds to clear a backlog in.")
    ] = None,
    up_cooldown: Annotated[
        float | None, typer.Option(min=0.0, callback=finite, help="Seconds after a change before scaling up.")
    ] = None,
    down_cooldown: Annotated[
        float | None, typer.Option(min=0.0, callback=finite, help="Seconds after a change before scaling down.")
    ] = None,
    state_dir: StateDirOption = None,
    group: GroupOption = None,
) -> None:
    """Scale the local supervisor's workers to the lag and the schedule; print every decision with its reason.

    Options override the config file, which overrides the built-in default (9:00-9:30 ET warm-up to 4
    workers, 4-8 in market hours, 1-2 after hours, weekdays; 500 ticks/s per worker).
    """
    from tickcast.ops.autoscale.config import load_config
    from tickcast.ops.autoscale.loop import run_autoscaler
    from tickcast.ops.autoscale.policy import format_decision
    from tickcast.ops.lag import LagReader
    from tickcast.ops.settings import OpsSettings

    settings = load_settings(OpsSettings, group_id=group, state_dir=state_dir)
    configure_logging("autoscale", settings.log_level, settings.log_format)
    stop = threading.Event()
    stop_on_signals(stop)
    with user_errors(), _ops_errors():
        config = load_config(schedule).with_overrides(
            min_workers=min_workers,
            max_workers=max_workers,
            per_worker_rate=per_worker_rate,
            drain_target_s=drain_target,
            scale_up_cooldown_s=up_cooldown,
            scale_down_cooldown_s=down_cooldown,
        )
        require_broker(settings, 30.0)
        reader = LagReader(settings, settings.ticks_topic, settings.group_id, timeout_s=settings.admin_timeout_s)
        try:
            run_autoscaler(
                config=config,
                read_lag=reader.read,
                state_dir=settings.state_dir,
                partitions=settings.partitions,
                stop_event=stop,
                interval_s=interval,
                dry_run=dry_run,
                emit=lambda decision: typer.echo(("[dry run] " if dry_run else "") + format_decision(decision)),
            )
        finally:
            reader.close()
