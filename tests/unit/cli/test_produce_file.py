"""``tickcast produce file|synthetic`` stop promptly on Ctrl-C or SIGTERM, even while pacing waits for the next tick."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tickcast.cli import app as cli
from tickcast.cli import produce
from tickcast.common.records import Tick
from tickcast.producer import publisher

#: Event-time gap between the file's two ticks; at --speed 1 the replay waits this long for the second.
GAP_S = 30


class SignalledPublisher:
    """Sends itself SIGTERM once the first tick is out, as a pod being stopped mid-replay would get it."""

    sent: list[Tick] = []

    def __init__(self, *args: Any) -> None:
        self.stats = publisher.DeliveryStats()

    def publish(self, tick: Tick) -> None:
        SignalledPublisher.sent.append(tick)
        if len(SignalledPublisher.sent) == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    def wait_delivered(self, timeout_s: float) -> None:
        pass

    def close(self) -> int:
        return 0


@pytest.fixture
def own_signal_handlers() -> Iterator[None]:
    """The command installs its own handlers; give the test runner its own back afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_a_signal_during_a_paced_gap_stops_the_replay_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_signal_handlers: None
) -> None:
    monkeypatch.setattr(publisher, "TickPublisher", SignalledPublisher)
    monkeypatch.setattr(produce, "require_broker", lambda settings, timeout_s: None)
    SignalledPublisher.sent = []
    path = tmp_path / "ticks.csv"
    path.write_text(f"ts_et,symbol,price,size\n2013-10-07T09:30:00,SPY,1,1\n2013-10-07T09:30:{GAP_S},SPY,2,1\n")
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["produce", "file", str(path), "--speed", "1"])
    took = time.monotonic() - started
    assert result.exit_code == 0 and "sent=1 skipped=0" in result.output, result.output
    assert took < GAP_S / 3, f"SIGTERM during a {GAP_S} s pacing wait stopped the replay only after {took:.1f} s"


def test_a_signal_between_slow_synthetic_ticks_stops_the_feed_at_once(
    monkeypatch: pytest.MonkeyPatch, own_signal_handlers: None
) -> None:
    class LaterSignalledPublisher(SignalledPublisher):
        def publish(self, tick: Tick) -> None:
            SignalledPublisher.sent.append(tick)
            if len(SignalledPublisher.sent) == 1:  # while the feed waits GAP_S for its second tick
                threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()

    monkeypatch.setattr(publisher, "TickPublisher", LaterSignalledPublisher)
    monkeypatch.setattr(produce, "require_broker", lambda settings, timeout_s: None)
    SignalledPublisher.sent = []
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["produce", "synthetic", "--rate", str(1 / GAP_S), "--count", "3"])
    took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert took < GAP_S / 3, f"SIGTERM during a {GAP_S} s wait between ticks stopped the feed only after {took:.1f} s"


def test_a_paced_replay_ends_at_its_limit_without_waiting_for_the_next_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_signal_handlers: None
) -> None:
    class QuietPublisher(SignalledPublisher):
        def publish(self, tick: Tick) -> None:
            SignalledPublisher.sent.append(tick)

    monkeypatch.setattr(publisher, "TickPublisher", QuietPublisher)
    monkeypatch.setattr(produce, "require_broker", lambda settings, timeout_s: None)
    SignalledPublisher.sent = []
    path = tmp_path / "ticks.csv"
    path.write_text(f"ts_et,symbol,price,size\n2013-10-07T09:30:00,SPY,1,1\n2013-10-07T09:30:{GAP_S},SPY,2,1\n")
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["produce", "file", str(path), "--speed", "1", "--limit", "1"])
    took = time.monotonic() - started
    assert result.exit_code == 0 and "sent=1 skipped=0" in result.output, result.output
    assert took < GAP_S / 3, (
        f"--limit 1 was reached at once, yet the replay waited {took:.1f} s for a tick it never sends"
    )


def test_synthetic_seconds_0_sends_nothing_rather_than_running_unbounded(
    monkeypatch: pytest.MonkeyPatch, own_signal_handlers: None
) -> None:
    class QuietPublisher(SignalledPublisher):
        def publish(self, tick: Tick) -> None:
            SignalledPublisher.sent.append(tick)

    monkeypatch.setattr(publisher, "TickPublisher", QuietPublisher)
    monkeypatch.setattr(produce, "require_broker", lambda settings, timeout_s: None)
    SignalledPublisher.sent = []
    # --count bounds the run either way; without it, --seconds 0 ran until Ctrl-C.
    result = CliRunner().invoke(cli, ["produce", "synthetic", "--rate", "0", "--count", "5", "--seconds", "0"])
    assert result.exit_code == 0, result.output
    assert len(SignalledPublisher.sent) == 0, f"--seconds 0 sent {len(SignalledPublisher.sent)} ticks"
