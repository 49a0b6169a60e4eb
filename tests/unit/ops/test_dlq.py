"""Replay receipts: a letter replayed once is skipped by the next replay, and only that letter."""

from __future__ import annotations

from tickcast.ops.dlq import DeadLetter, Receipt, Skipped, not_yet_replayed

AT = 1_700_000_000_000


def letter(offset: int, source_offset: int) -> DeadLetter:
    headers = {"reason": "bad_price", "source.topic": "ticks", "source.partition": "3",
               "source.offset": str(source_offset)}  # fmt: skip
    return DeadLetter(0, offset, b"SPY", b"x", headers)


def test_letters_with_a_receipt_are_skipped_and_counted_with_when_they_were_replayed() -> None:
    letters = [letter(0, 10), letter(1, 11), letter(2, 12)]
    receipts = {"0:0": Receipt("0:0", "ticks:3:10", AT), "0:2": Receipt("0:2", "ticks:3:12", AT + 60_000)}
    skipped = Skipped()
    sent = [x.ref for x in not_yet_replayed(letters, receipts, skipped)]
    assert sent == ["0:1"], f"letters replayed before were sent again: {sent}"
    assert str(skipped) == "skipped 2 already replayed at 2023-11-14T22:13:20Z to 2023-11-14T22:14:20Z"


def test_a_receipt_of_another_letter_at_the_same_position_does_not_skip_this_one() -> None:
    # The dead-letter topic was deleted and created again: its offsets start over, its letters are new.
    receipts = {"0:0": Receipt("0:0", "ticks:3:999", AT)}
    skipped = Skipped()
    assert [x.ref for x in not_yet_replayed([letter(0, 10)], receipts, skipped)] == ["0:0"]
    assert skipped.count == 0


def test_the_letters_are_read_as_they_come_not_all_first() -> None:
    def endless() -> object:
        offset = 0
        while True:
            yield letter(offset, offset)
            offset += 1

    stream = not_yet_replayed(endless(), {}, Skipped())  # type: ignore[arg-type]
    assert next(stream).ref == "0:0"
