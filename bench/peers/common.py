"""What every peer process shares: the handler, settings and the status file the bench polls."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from tickcast.common.logging import configure_logging
from tickcast.common.records import Lineage
from tickcast.predictor.runtime import Predicted, TickHandler
from tickcast.predictor.settings import PredictorSettings

STATUS_INTERVAL_S = 0.5


class PeerStep:
    """tickcast's handler behind one call per record, and a thread that writes the bench's status file."""

    def __init__(self, name: str) -> None:
        self.settings = PredictorSettings()
        configure_logging(name, "WARNING", self.settings.log_format)
        self.handler = TickHandler(self.settings)
        self.status_file = Path(os.environ["BENCH_STATUS_FILE"])
        self.partitions = list(range(self.settings.partitions))
        self._stop = threading.Event()
        threading.Thread(target=self._report, name="status", daemon=True).start()

    def __call__(
        self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int, ts: int
    ) -> bytes | None:
        """The prediction's bytes, or None for a record the handler dead-lettered (none in a bench backlog)."""
        outcome = self.handler.handle(key, value, Lineage(topic, partition, offset, ts))
        return outcome.value if isinstance(outcome, Predicted) else None

    def write_status(self) -> None:
        counters = self.handler.counters
        status = {
            "pid": os.getpid(),
            # Peers do not report their assignment; a backlog drain does not need it.
            "assigned": self.partitions,
            "ticks_in": counters.ticks_in,
            "predictions_out": counters.predictions_out,
            "dead_letters": sum(counters.dead_letters.values()),
        }
        temporary = self.status_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(status))
        os.replace(temporary, self.status_file)

    def _report(self) -> None:
        while not self._stop.wait(STATUS_INTERVAL_S):
            self.write_status()
