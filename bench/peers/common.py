"""What every peer process shares: the handler, settings and the status file the bench polls."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from bench.peers.recipe import Recipe, Symbol
from tickcast.common.logging import configure_logging
from tickcast.common.records import Lineage
from tickcast.predictor.runtime import Predicted, TickHandler
from tickcast.predictor.settings import PredictorSettings

STATUS_INTERVAL_S = 0.5


#: ``handler`` (view 1: tickcast's handler in the framework) or ``user`` (view 2: the recipe in the framework's state).
VIEW = os.environ.get("BENCH_PEER_VIEW", "handler")
#: View 2's Schema Registry, which the bench serves from the catalogue (:mod:`tickcast.testing.registry_stub`).
REGISTRY_URL = os.environ.get("BENCH_PEER_REGISTRY_URL", "")


class PeerStep:
    """tickcast's handler (or the user recipe) behind one call per record, and a thread writing the status file."""

    def __init__(self, name: str) -> None:
        self.settings = PredictorSettings()
        configure_logging(name, "WARNING", self.settings.log_format)
        self.handler = TickHandler(self.settings)
        self.recipe = Recipe(self.settings)
        self.user_ticks = 0
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

    def user_step(
        self, state: Symbol | None, tick: dict[str, Any], topic: str, partition: int, offset: int, ts: int
    ) -> tuple[Symbol, dict[str, Any]]:
        """View 2: the recipe on a tick its framework's serde decoded and a symbol's state the framework keeps
        (None: its first tick); the prediction record goes to the framework's serializer."""
        self.user_ticks += 1
        state = state if state is not None else self.recipe.new_symbol()
        return state, self.recipe.predict(state, tick, topic, partition, offset, ts)

    def user_step_bytes(
        self, state: Symbol | None, value: bytes, topic: str, partition: int, offset: int, ts: int
    ) -> tuple[Symbol, bytes]:
        """:meth:`user_step` between the recipe's own fastavro decode and encode, for a framework with no Avro serde."""
        state, record = self.user_step(state, self.recipe.decode(value), topic, partition, offset, ts)
        return state, self.recipe.encode(record)

    def write_status(self) -> None:
        counters = self.handler.counters
        status = {
            "pid": os.getpid(),
            # Peers do not report their assignment; a backlog drain does not need it.
            "assigned": self.partitions,
            "ticks_in": counters.ticks_in + self.user_ticks,
            "predictions_out": counters.predictions_out + self.user_ticks,
            "dead_letters": sum(counters.dead_letters.values()),
        }
        temporary = self.status_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(status))
        os.replace(temporary, self.status_file)

    def _report(self) -> None:
        while not self._stop.wait(STATUS_INTERVAL_S):
            self.write_status()
