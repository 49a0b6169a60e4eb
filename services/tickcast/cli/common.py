"""What every command of the ``tickcast`` CLI shares: one-line user errors, settings, signals, the broker check.

Errors a user can fix (bad settings, unreachable broker, bad file) print one line naming the problem and exit
non-zero; they never print a traceback. Command modules import this module and the services, never each other.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from tickcast.common.redaction import redact_text
from tickcast.common.security import KafkaClientSettings
from tickcast.common.settings import CommonSettings

S = TypeVar("S", bound=BaseSettings)
T = TypeVar("T")


class UserError(Exception):
    """A problem the user can fix; :func:`user_errors` prints it as one line."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``tickcast: error: <message>`` on stderr and exit with ``code`` (2: bad usage, 1: it failed).

    >>> try:
    ...     fail("no such file", code=1)
    ... except typer.Exit as exit:
    ...     exit.exit_code
    1
    """
    typer.echo(f"tickcast: error: {redact_text(message)}", err=True)
    raise typer.Exit(code)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Settings from ``TICKCAST_*`` plus command-line overrides (None = not given); a bad value is one clear line.

    >>> from tickcast.ops.settings import OpsSettings
    >>> load_settings(OpsSettings, group_id="g", state_dir=None).group_id
    'g'
    >>> try:
    ...     load_settings(OpsSettings, group_id="no spaces")
    ... except typer.Exit as exit:
    ...     exit.exit_code
    2
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = cls(**given)
    except ValidationError as exc:
        fail(f"invalid configuration: {describe_invalid(cls, exc, frozenset(given))}")
    if isinstance(settings, CommonSettings):
        for warning in settings.misspelt_variables():
            typer.echo(f"tickcast: warning: {warning}", err=True)
    return settings


def describe_invalid(cls: type[BaseSettings], exc: ValidationError, from_options: frozenset[str] = frozenset()) -> str:
    """Each problem as ``TICKCAST_NAME: why (got value)``; a secret's value and a whole-settings input never shown.

    A field in ``from_options`` came from the command line, not the environment, and is named so.

    >>> from tickcast.common.security import KafkaClientSettings
    >>> try:
    ...     KafkaClientSettings(security_protocol="SASL_SSL", sasl_username="u")
    ... except ValidationError as exc:
    ...     describe_invalid(KafkaClientSettings, exc)
    'TICKCAST_SECURITY_PROTOCOL=SASL_SSL needs TICKCAST_SASL_USERNAME and TICKCAST_SASL_PASSWORD'
    """
    problems = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a rule across fields: its input is every setting, secrets included
            problems.append(message)
            continue
        name = str(error["loc"][0])
        field = cls.model_fields.get(name)
        secret = field is not None and "SecretStr" in str(field.annotation)
        shown = " (value not shown: it is a secret)" if secret else f" (got {redact_text(repr(error.get('input')))})"
        where = " (given on the command line)" if name in from_options else ""
        problems.append(f"TICKCAST_{'_'.join(str(p) for p in error['loc']).upper()}{where}: {message}{shown}")
    return "; ".join(problems)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the project's known failures into one line and exit code 1.

    >>> try:
    ...     with user_errors():
    ...         raise UserError("the file is empty")
    ... except typer.Exit as exit:
    ...     exit.exit_code
    1
    """
    # Imported here so that `tickcast --help` does not load the Kafka and broker clients.
    from tickcast.broker.embedded import BrokerStartError
    from tickcast.common.contracts import SchemaError
    from tickcast.common.kafka import BrokerUnavailable, TopicMismatch, TopicRefused
    from tickcast.common.refusals import BrokerRefused
    from tickcast.gateway.auth import ClientsFileError
    from tickcast.gateway.tls import TlsFileError

    try:
        yield
    except (
        UserError,
        BrokerStartError,
        SchemaError,
        BrokerUnavailable,
        BrokerRefused,
        TopicMismatch,
        TopicRefused,
        ClientsFileError,
        TlsFileError,
        OSError,
    ) as exc:
        fail(str(exc), code=1)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT (Ctrl-C) set ``stop``, so a loop finishes its current step and exits cleanly."""

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def require_broker(kafka: KafkaClientSettings, timeout_s: float) -> None:
    """Wait until the broker answers; raises ``BrokerUnavailable`` (a one-line user error) after ``timeout_s``."""
    from tickcast.common.kafka import wait_for_broker

    wait_for_broker(kafka, timeout_s=timeout_s)


def read_topic_once(command: str, read: Callable[[CommonSettings], T]) -> T:
    """``read(settings)`` for a command that reads a whole topic once (dead letters, model events): its settings
    and logging loaded, the broker waited for, and a topic that is missing or does not answer said in one line."""
    from tickcast.common.logging import configure_logging

    settings = load_settings(CommonSettings)
    configure_logging(command, settings.log_level, settings.log_format)
    with user_errors():
        require_broker(settings, 30.0)
        try:
            result = read(settings)
        except (LookupError, TimeoutError, RuntimeError) as exc:
            raise UserError(str(exc)) from exc
    return result


def stream_topic_once(command: str, read: Callable[[CommonSettings], Iterator[T]]) -> Generator[T, None, None]:
    """What ``read(settings)`` yields, as :func:`read_topic_once` but one record at a time (a topic too large to
    hold): the settings, logging and broker wait come with the first record, and a topic that is missing or stops
    answering is one line, also when that shows only halfway through."""
    from tickcast.common.logging import configure_logging

    settings = load_settings(CommonSettings)
    configure_logging(command, settings.log_level, settings.log_format)
    with user_errors():
        require_broker(settings, 30.0)
        try:
            yield from read(settings)
        except (LookupError, TimeoutError, RuntimeError) as exc:
            raise UserError(str(exc)) from exc


def finite(value: float | None) -> float | None:
    """A typer callback refusing NaN and infinities, which click's ranges (``min=``) let through.

    >>> finite(2.5), finite(None)
    (2.5, None)
    """
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value
