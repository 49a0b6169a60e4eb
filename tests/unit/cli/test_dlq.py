"""``tickcast dlq list|replay`` say so when a reason code or a ``--ref`` names nothing that can exist, and replay
sends nothing when a ``--ref`` is not in the topic, instead of ``replayed=0`` and exit 0."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from tickcast.cli import app as cli
from tickcast.cli import dlq
from tickcast.ops import dlq as ops_dlq
from tickcast.ops.dlq import DeadLetter, Receipt
from tickcast.producer import publisher

LETTERS = [
    DeadLetter(7, 0, b"SPY", b"x", {"reason": "bad_price", "message": "price must be ..."}),
    DeadLetter(7, 1, b"SPY", b"y", {"reason": "bad_size", "message": "size must be ..."}),
]


class FakePublisher:
    sent: list[bytes | None] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.stats = publisher.DeliveryStats()

    def publish_raw(self, key: bytes | None, value: bytes | None, headers: Any, on_delivered: Any = None) -> None:
        FakePublisher.sent.append(value)

    def close(self) -> int:
        return 0


class FakeReceipts:
    """No receipts topic: nothing replayed before, and receipts written go nowhere."""

    failed, last_error = 0, None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def write(self, delivered: Any) -> None:
        pass

    def close(self) -> int:
        return 0


@pytest.fixture(autouse=True)
def topic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dlq, "_dead_letters", lambda: (letter for letter in LETTERS))
    monkeypatch.setattr(publisher, "TickPublisher", FakePublisher)
    monkeypatch.setattr(dlq, "_ensure_receipts_topic", lambda settings: None)
    monkeypatch.setattr(dlq, "_replayed", lambda *args: {})
    monkeypatch.setattr(ops_dlq, "ReceiptWriter", FakeReceipts)
    FakePublisher.sent = []


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["replay", "--reason", "bad_prise"], 2, "unknown reason code 'bad_prise' (known: bad_avro, bad_magic_byte"),
        (["list", "--reason", "nonsense"], 2, "unknown reason code 'nonsense'"),
        (["replay", "--ref", "abc"], 2, "--ref 'abc': want PARTITION:OFFSET"),
        (["replay", "--ref", "7:0", "--ref", "7:999"], 1, "no dead letter at 7:999 in ticks.dlq; nothing replayed"),
    ],
)
def test_a_choice_that_names_nothing_is_one_line_and_sends_nothing(args: list[str], code: int, said: str) -> None:
    result = CliRunner().invoke(cli, ["dlq", *args])
    assert (result.exit_code, FakePublisher.sent) == (code, []), result.output
    assert said in result.output and "Traceback" not in result.output


def test_a_ref_in_the_topic_is_replayed() -> None:
    result = CliRunner().invoke(cli, ["dlq", "replay", "--ref", "7:1"])
    assert result.exit_code == 0 and "replayed=1 to=ticks" in result.output
    assert FakePublisher.sent == [b"y"]


def test_a_letter_the_broker_fails_to_deliver_is_not_counted_as_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    # librdkafka reports a failed delivery (message too large, timed out) through the delivery callback and then
    # drops the message from its queue, so flush() returns 0 for it: only the stats know it never arrived.
    class FailingPublisher(FakePublisher):
        def close(self) -> int:
            self.stats.failed = len(FakePublisher.sent)
            self.stats.last_error = "Broker: Message size too large"
            return 0

    monkeypatch.setattr(publisher, "TickPublisher", FailingPublisher)
    result = CliRunner().invoke(cli, ["dlq", "replay", "--reason", "bad_price", "--reason", "bad_size"])
    assert result.exit_code == 1, f"exit {result.exit_code} after no letter was delivered: {result.output}"
    assert "replayed=0 to=ticks" in result.output and "Message size too large" in result.output, result.output


def test_a_letter_cut_to_fit_the_topic_is_not_replayed_as_if_it_were_the_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    # The worker keeps only a prefix of a record too large for the dead-letter topic (or no payload at all):
    # sent back, those bytes are no tick, only a new dead letter under another reason.
    cut = DeadLetter(
        7, 2, b"SPY", b"\x00\x00\x00\x00\x01\x06SP", {"reason": "oversized", "original.value_bytes": "9000"}
    )
    dropped = DeadLetter(7, 3, None, None, {"reason": "oversized", "payload_dropped": "Message size too large"})
    whole = DeadLetter(7, 4, b"SPY", b"z", {"reason": "oversized"})
    monkeypatch.setattr(dlq, "_dead_letters", lambda: (letter for letter in (cut, dropped, whole)))
    result = CliRunner().invoke(cli, ["dlq", "replay", "--reason", "oversized"])
    assert FakePublisher.sent == [b"z"], f"cut letters were sent as ticks: {FakePublisher.sent}"
    assert result.exit_code == 1 and "replayed=1 to=ticks" in result.output, result.output
    assert "7:2, 7:3" in result.output and "not replayed" in result.output, result.output


def test_a_negative_list_limit_is_a_usage_error_not_all_but_the_last() -> None:
    # letters[:limit] with limit -1 listed every letter but the newest.
    result = CliRunner().invoke(cli, ["dlq", "list", "--json", "--limit", "-1"])
    assert result.exit_code == 2 and "Invalid value for '--limit'" in result.output, result.output


def test_a_receipt_is_written_only_for_a_letter_whose_tick_was_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []

    class Receipts(FakeReceipts):
        def write(self, delivered: Any) -> None:
            written.append(delivered.letter.ref)

    class HalfDelivering(FakePublisher):
        """The broker confirms the first tick; the second one's delivery fails (no report to on_delivered)."""

        def publish_raw(self, key: bytes | None, value: bytes | None, headers: Any, on_delivered: Any = None) -> None:
            super().publish_raw(key, value, headers)
            if len(FakePublisher.sent) == 1:
                on_delivered(SimpleNamespace(topic=lambda: "ticks", partition=lambda: 3, offset=lambda: 41))
            else:
                self.stats.failed += 1

    monkeypatch.setattr(ops_dlq, "ReceiptWriter", Receipts)
    monkeypatch.setattr(publisher, "TickPublisher", HalfDelivering)
    result = CliRunner().invoke(cli, ["dlq", "replay", "--reason", "bad_price", "--reason", "bad_size"])
    assert result.exit_code == 1 and "replayed=1 to=ticks" in result.output, result.output
    assert written == ["7:0"], f"receipts written for {written}, only 7:0 was delivered"


def test_a_letter_with_a_receipt_is_skipped_unless_again(monkeypatch: pytest.MonkeyPatch) -> None:
    receipts = {"7:0": Receipt("7:0", "", 1_700_000_000_000)}
    monkeypatch.setattr(dlq, "_replayed", lambda *args: receipts)
    result = CliRunner().invoke(cli, ["dlq", "replay", "--reason", "bad_price", "--reason", "bad_size"])
    assert result.exit_code == 0 and FakePublisher.sent == [b"y"], f"sent {FakePublisher.sent}: {result.output}"
    assert "skipped 1 already replayed at 2023-11-14T22:13:20Z" in result.output and "replayed=1" in result.output
    FakePublisher.sent = []
    result = CliRunner().invoke(cli, ["dlq", "replay", "--reason", "bad_price", "--reason", "bad_size", "--again"])
    assert result.exit_code == 0 and FakePublisher.sent == [b"x", b"y"], f"--again sent {FakePublisher.sent}"


def test_a_letter_whose_message_looks_like_markup_is_listed_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    # The message quotes the refused record's key and symbol, which the producer chose: rich read "[/B]" as a
    # closing tag and `tickcast dlq list` stopped with a MarkupError traceback for every listing that held it.
    message = "record key 'A[/B]' differs from symbol '[bold]IBM'"
    odd = DeadLetter(7, 5, b"A[/B]", b"x", {"reason": "key_symbol_mismatch", "message": message})
    monkeypatch.setattr(dlq, "_dead_letters", lambda: (letter for letter in [odd]))
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["dlq", "list"])
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.exception!r}"
    assert message in result.output, result.output
