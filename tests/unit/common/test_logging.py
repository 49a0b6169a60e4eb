"""``configure_logging``: libraries that log every request at INFO are kept to warnings."""

from __future__ import annotations

import logging

from tickcast.common.logging import configure_logging


def test_httpx_request_lines_stay_out_of_a_commands_stderr_unless_debugging() -> None:
    # `tickcast subscribe --gateway` printed an httpx INFO line per request beside its JSON output, and the
    # gateway one per worker /stats poll.
    configure_logging("t", "INFO", "json")
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)
    configure_logging("t", "DEBUG", "json")
    assert logging.getLogger("httpx").isEnabledFor(logging.DEBUG)
