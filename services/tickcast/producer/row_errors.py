"""What reading a tick file can go wrong with: one row (:class:`RowError`) or the whole file (:class:`ReplayError`).

:class:`ReplaySummary` keeps the running count of both outcomes of a replay.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tickcast.common.errors import Reason, RowReason

__all__ = ["ReplayError", "ReplaySummary", "RowError"]

_MAX_SHOWN_VALUE = 60


@dataclass(frozen=True)
class RowError:
    """Why one CSV row did not become a tick; ``line`` is the physical line (the header is line 1).

    >>> str(RowError("ticks.csv", 17, "price", "abc", RowReason.BAD_NUMBER, "not a number"))
    "ticks.csv:17: column 'price' value 'abc': not a number"
    """

    path: str
    line: int
    column: str | None
    value: str | None
    reason: Reason | RowReason
    message: str

    def __str__(self) -> str:
        context = []
        if self.column is not None:
            context.append(f"column {self.column!r}")
        if self.value is not None:
            cut = len(self.value) > _MAX_SHOWN_VALUE
            shown = self.value[:_MAX_SHOWN_VALUE] + "..." if cut else self.value
            context.append(f"value {shown!r}")
        head = f"{self.path}:{self.line}: " + (" ".join(context) + ": " if context else "")
        return head + self.message


class ReplayError(Exception):
    """A file-level problem (missing, unreadable, not CSV, header lacking a mapped column).

    >>> str(ReplayError("ticks.csv: no such file"))
    'ticks.csv: no such file'
    """


@dataclass
class ReplaySummary:
    """Running totals of a replay: ticks sent, rows skipped by reason code, and the first error seen.

    >>> s = ReplaySummary(sent=10)
    >>> s.record_error(RowError("t.csv", 3, "price", "-1", Reason.BAD_PRICE, "price must be > 0"))
    >>> s.record_error(RowError("t.csv", 9, "ts_et", "x", RowReason.BAD_TIME, "not an ISO-8601 time"))
    >>> s.line(), s.first_error.line if s.first_error else None
    ('sent=10 skipped=2 (bad_price=1, bad_time=1)', 3)
    """

    sent: int = 0
    skipped: Counter[Reason | RowReason] = field(default_factory=Counter)
    first_error: RowError | None = None

    def record_error(self, error: RowError) -> None:
        """Count ``error`` under its reason and keep it if it is the first.

        >>> s = ReplaySummary()
        >>> s.record_error(RowError("t.csv", 2, None, None, RowReason.BAD_CSV, "oops")); s.skipped[RowReason.BAD_CSV]
        1
        """
        self.skipped[error.reason] += 1
        if self.first_error is None:
            self.first_error = error

    def line(self) -> str:
        """One log line: ``sent=N skipped=M`` plus per-reason counts in name order when any were skipped.

        >>> ReplaySummary(sent=3).line()
        'sent=3 skipped=0'
        """
        total = sum(self.skipped.values())
        text = f"sent={self.sent} skipped={total}"
        if total:
            text += " (" + ", ".join(f"{reason}={n}" for reason, n in sorted(self.skipped.items()) if n) + ")"
        return text
