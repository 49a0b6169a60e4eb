"""``tickcast subscribe --dead-letters``: ``--symbols`` narrows the dead letters and predictions it prints, and
each dead letter says which key (symbol) it was refused under."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
from typer.testing import CliRunner

from tickcast.cli import app as cli
from tickcast.common.records import Prediction
from tickcast.subscriber import reader
from tickcast.subscriber.reader import Received


def prediction(symbol: str, offset: int) -> Received:
    record = Prediction(symbol, 1, 1.0, 0.0, 1.0, 1, "READY", "m", "v", 0, "ticks", 0, offset, 0, 0, "w")
    return Received("predictions", 0, offset, prediction=record)


def dead_letter(key: str | None, offset: int) -> Received:
    return Received("ticks.dlq", 0, offset, dead_letter={"tickcast.reason": "bad_price"}, key=key)


class FakeReader:
    """What the topics hold: two symbols' predictions and dead letters, and one dead letter with no key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.batches = [
            [prediction("SPY", 0), dead_letter("SPY", 0), prediction("MSFT", 1)],
            [dead_letter(None, 1), dead_letter("MSFT", 2), prediction("SPY", 2)],
        ]

    handled: list[Received] = []

    def poll(self, timeout_s: float = 0.2) -> list[Received]:
        return self.batches.pop(0) if self.batches else []

    def done(self, received: Received) -> None:
        FakeReader.handled.append(received)

    def close(self) -> None:
        pass


def test_symbols_narrow_what_dead_letters_mode_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "PredictionReader", FakeReader)
    monkeypatch.setattr("tickcast.cli.services.require_broker", lambda *args: None)
    result = CliRunner().invoke(
        cli, ["subscribe", "--dead-letters", "--symbols", "MSFT", "--count", "2", "--timeout", "0.5"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("symbol") or line.get("key") for line in lines] == ["MSFT", "MSFT"], lines
    assert lines[1]["dead_letter"] == {"tickcast.reason": "bad_price"}
    # A group commits what was printed or left out by --symbols, never what came after the count was reached.
    handled = [(r.topic, r.offset) for r in FakeReader.handled]
    assert handled == [("predictions", 0), ("ticks.dlq", 0), ("predictions", 1), ("ticks.dlq", 1), ("ticks.dlq", 2)]


def test_a_bad_symbol_is_one_line_in_dead_letters_mode_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "PredictionReader", FakeReader)
    monkeypatch.setattr("tickcast.cli.services.require_broker", lambda *args: None)
    result = CliRunner().invoke(cli, ["subscribe", "--dead-letters", "--symbols", "spy x", "--count", "1"])
    assert result.exit_code == 1 and "symbol 'spy x' does not match" in result.output


def test_a_gateway_that_never_answers_is_one_line_not_a_silent_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed again below: connections are refused
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["subscribe", "--gateway", url, "--count", "1", "--timeout", "1"])
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert f"gateway at {url} did not answer within 1s" in result.output and "Traceback" not in result.output
    assert time.monotonic() - started < 20


def test_from_the_beginning_through_a_gateway_is_refused_not_ignored() -> None:
    # A gateway keeps the latest prediction per symbol and a ring for resuming, not the topic's history.
    result = CliRunner().invoke(cli, ["subscribe", "--gateway", "http://127.0.0.1:1", "--from-beginning"])
    assert result.exit_code == 2 and "--from-beginning reads Kafka" in result.output, result.output
