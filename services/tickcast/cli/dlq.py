"""``tickcast dlq``: list, count and replay dead letters (ticks the workers refused)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator
from contextlib import closing
from itertools import islice
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tickcast.cli.common import UserError, fail, load_settings, stream_topic_once, user_errors

if TYPE_CHECKING:
    from confluent_kafka import Message

    from tickcast.common.settings import CommonSettings
    from tickcast.ops.dlq import DeadLetter, Delivered, Receipt, ReceiptWriter, Skipped

dlq_app = typer.Typer(help="Inspect and replay dead letters (ticks the workers refused).", no_args_is_help=True)


@dlq_app.command("list")
def dlq_list(
    reason: Annotated[list[str] | None, typer.Option(help="Only these reason codes (repeatable).")] = None,
    limit: Annotated[int, typer.Option(min=0, help="Show at most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List dead letters: where each came from, why it was refused, and its handle (partition:offset)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from tickcast.ops.dlq import select

    with closing(_dead_letters()) as stream:
        letters = select(stream, _known_reasons(reason), None)
        if as_json:
            for letter in islice(letters, limit):
                typer.echo(json.dumps({"ref": letter.ref, "key": (letter.key or b"").decode("utf-8", "replace"),
                                       **letter.headers}))  # fmt: skip
            return
        # Only the first `limit` are kept; the others are only counted (the topic can hold millions).
        shown = list(islice(letters, limit))
        matching = len(shown) + sum(1 for _ in letters)
    table = Table(title=f"dead letters ({matching} matching)")
    for column in ("ref", "reason", "message", "source", "worker"):
        table.add_column(column)
    for letter in shown:
        h = letter.headers
        source = f"{h.get('source.topic', '?')}:{h.get('source.partition', '?')}:{h.get('source.offset', '?')}"
        cells = (letter.ref, letter.reason, letter.message, source, h.get("worker", ""))
        # As plain Text: the message quotes the refused key and symbol, which rich would read as markup.
        table.add_row(*(Text(cell) for cell in cells))
    Console().print(table)


@dlq_app.command("summary")
def dlq_summary() -> None:
    """Dead letters counted by reason, one `reason=count` per line, then the total."""
    from tickcast.ops.dlq import summarise

    with closing(_dead_letters()) as stream:
        counts = summarise(stream)
    for name, count in sorted(counts.items()):
        typer.echo(f"{name}={count}")
    typer.echo(f"total={sum(counts.values())}")


@dlq_app.command("replay")
def dlq_replay(
    reason: Annotated[list[str] | None, typer.Option(help="Replay letters with these reason codes.")] = None,
    ref: Annotated[list[str] | None, typer.Option(help="Replay these letters (partition:offset, repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be replayed.")] = False,
    again: Annotated[
        bool, typer.Option("--again", help="Also send letters a receipt says were replayed already.")
    ] = False,
) -> None:
    """Send chosen dead letters, bytes untouched, back to the ticks topic (after the cause is fixed).

    Each letter delivered gets a receipt; a later replay skips letters with one, so a rerun sends nothing twice.
    """
    from tickcast.ops.dlq import Delivered, ReceiptWriter, Skipped, not_yet_replayed, replay_headers, select
    from tickcast.producer.publisher import TickPublisher
    from tickcast.producer.settings import ProducerSettings

    if not reason and not ref:
        fail("say which letters to replay: --reason CODE and/or --ref PARTITION:OFFSET")
    reasons = _known_reasons(reason)
    for handle in ref or ():
        if not _REF.fullmatch(handle):
            fail(f"--ref {handle!r}: want PARTITION:OFFSET of a dead letter, as `tickcast dlq list` shows it")
    settings = load_settings(ProducerSettings)
    with user_errors():
        if not dry_run:
            _ensure_receipts_topic(settings)
        receipts = {} if again else _replayed(settings, reasons, set(ref) if ref else None)
    skipped = Skipped()
    with closing(_dead_letters()) as stream:
        letters = select(stream, reasons, set(ref) if ref else None)
        if ref:
            # Letters named one by one are few (no more than the --refs given): all are found before any is sent.
            letters = iter(chosen := list(letters))
            found = {letter.ref for letter in chosen}
            if missing := [handle for handle in ref if handle not in found]:
                where = f"{settings.dlq_topic}" + (f" with reason {', '.join(sorted(reasons))}" if reasons else "")
                fail(f"no dead letter at {', '.join(missing)} in {where}; nothing replayed", code=1)
        cut = _Cut()
        whole = (letter for letter in not_yet_replayed(letters, receipts, skipped) if not cut.holds(letter))
        if dry_run:
            count = sum(1 for _ in whole)
            cut.say()
            _say_skipped(skipped, settings.dlq_receipts_topic)
            typer.echo(f"would replay {count} dead letters to {settings.ticks_topic}")
            return
        sent = 0
        # Delivery reports of ticks, turned into receipts between sends (never from inside a report).
        delivered: list[Delivered] = []

        def receipt_when_delivered(letter: DeadLetter) -> Callable[[Message], None]:
            return lambda message: delivered.append(Delivered.of(letter, message))

        with user_errors():
            # librdkafka's queue bounds what is in flight: a send waits for deliveries once it holds this much.
            publisher = TickPublisher(settings, **_IN_FLIGHT)
            writer = ReceiptWriter(settings, **_IN_FLIGHT)
            try:
                for letter in whole:
                    publisher.publish_raw(
                        letter.key,
                        letter.value,
                        replay_headers(letter, settings.dlq_topic),
                        receipt_when_delivered(letter),
                    )
                    sent += 1
                    _write_receipts(delivered, writer)
            finally:  # what was sent before a read error still goes out, and gets its receipt
                undelivered = publisher.close()
                _write_receipts(delivered, writer)
                unwritten = writer.close() + writer.failed
    cut.say()
    _say_skipped(skipped, settings.dlq_receipts_topic)
    # A failed delivery (too large, timed out) leaves librdkafka's queue through its report: flush() misses it.
    lost = undelivered + publisher.stats.failed
    typer.echo(f"replayed={sent - lost} to={settings.ticks_topic}")
    if lost:
        fail(f"{lost} dead letters were not delivered: {publisher.stats.last_error}", 1)
    if unwritten:
        fail(
            f"{unwritten} dead letters were replayed but have no receipt in {settings.dlq_receipts_topic} "
            f"({writer.last_error or 'not delivered in time'}): a replay without --again would send them again",
            1,
        )
    if cut.count:
        raise typer.Exit(1)


def _write_receipts(delivered: list[Delivered], writer: ReceiptWriter) -> None:
    while delivered:
        writer.write(delivered.pop())


def _say_skipped(skipped: Skipped, receipts_topic: str) -> None:
    if skipped.count:
        typer.echo(f"{skipped} (receipts in {receipts_topic}); --again sends them again")


def _ensure_receipts_topic(settings: CommonSettings) -> None:
    """Create the receipts topic with its declared configs if it is missing (a cluster set up before it)."""
    from tickcast.common.kafka import wait_for_broker
    from tickcast.common.topic_admin import create_declared
    from tickcast.common.topic_specs import by_role, topic_specs

    admin = wait_for_broker(settings, 30.0)
    create_declared(admin, [by_role(topic_specs(settings))["replay_receipts"]])


def _replayed(settings: CommonSettings, reasons: set[str] | None, refs: set[str] | None) -> dict[str, Receipt]:
    """Receipts of the letters chosen; none when there is no receipts topic yet (a dry run creates nothing)."""
    from tickcast.ops.dlq import read_receipts

    try:
        return read_receipts(settings, reasons, refs)
    except LookupError:
        return {}
    except (TimeoutError, RuntimeError) as exc:
        raise UserError(str(exc)) from exc


#: At most this many replayed ticks (or this many KiB of them) wait in librdkafka's queue for delivery.
_IN_FLIGHT: dict[str, Any] = {"queue.buffering.max.messages": 10_000, "queue.buffering.max.kbytes": 64 * 1024}


class _Cut:
    """Letters not replayed because they were cut to fit the dead-letter topic: counted, and the first named."""

    NAMED = 20

    def __init__(self) -> None:
        self.count = 0
        self.refs: list[str] = []

    def holds(self, letter: DeadLetter) -> bool:
        if not _cut_to_fit(letter):
            return False
        self.count += 1
        if len(self.refs) < self.NAMED:
            self.refs.append(letter.ref)
        return True

    def say(self) -> None:
        if not self.count:
            return
        more = f" and {self.count - len(self.refs)} more" if self.count > len(self.refs) else ""
        typer.echo(
            f"tickcast: {self.count} dead letters not replayed: {', '.join(self.refs)}{more} were cut to fit the "
            "dead-letter topic and no longer hold the original record",
            err=True,
        )


def _cut_to_fit(letter: DeadLetter) -> bool:
    """Whether the worker kept only a prefix of the refused record, or none of it (too large for the topic).

    >>> from tickcast.ops.dlq import DeadLetter
    >>> [_cut_to_fit(DeadLetter(0, 1, b"K", b"x", headers)) for headers in ({"original.value_bytes": "9000"}, {})]
    [True, False]
    """
    return any(name in letter.headers for name in ("original.key_bytes", "original.value_bytes", "payload_dropped"))


#: A dead letter's handle in the dead-letter topic, as ``tickcast dlq list`` prints it.
_REF = re.compile(r"\d+:\d+")


def _known_reasons(codes: list[str] | None) -> set[str] | None:
    """``codes`` as a filter (None: no filter); a code no worker ever writes is a typo, said in one line."""
    from tickcast.common.errors import Reason

    known = {reason.value for reason in Reason}
    for code in codes or ():
        if code not in known:
            fail(f"unknown reason code {code!r} (known: {', '.join(sorted(known))})")
    return set(codes) if codes else None


def _dead_letters() -> Generator[DeadLetter, None, None]:
    """The dead-letter topic, one letter at a time: it may hold millions (a month of a flood of refused ticks)."""
    from tickcast.ops.dlq import stream_dead_letters

    return stream_topic_once("dlq", stream_dead_letters)
