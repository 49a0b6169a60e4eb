"""Signed snapshots of one symbol's state, so it can follow its partition to another worker.

The payload is a pickle (River models are plain Python objects), and unpickling
runs code, so a snapshot is only unpickled after its HMAC-SHA256 signature,
made with ``TICKCAST_SNAPSHOT_KEY``, checks out. Everything else about a
snapshot is an Avro record (``schemas/snapshot.avsc``) in the Confluent wire
format, readable without unpickling anything.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import river

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.errors import Rejected
from tickcast.predictor.forecaster import SymbolState

SNAPSHOT_SCHEMA_FILE = "snapshot.avsc"
#: Layout of the payload. Bump it when SymbolState changes shape; older workers then refuse, never crash.
FORMAT_VERSION = 1


class RefusalReason(StrEnum):
    UNDECODABLE = "undecodable"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_FORMAT = "unknown_format"
    OTHER_MODEL = "other_model"
    OTHER_RIVER = "other_river"


class SnapshotRefused(Exception):
    """A snapshot this worker will not load, and why; the symbol then starts fresh."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A verified snapshot: where it belongs and the state it carries."""

    symbol: str
    partition: int
    applied_offset: int
    created_at: int
    worker: str
    state: SymbolState
    generation: int = -1


@dataclass(frozen=True, order=True, slots=True)
class Rank:
    """How current a signed snapshot is: a newer group generation wins, then a later applied offset.

    A worker that owned the partition in an older generation (a zombie that stalled past its
    session timeout) may still write after the new owner: its snapshot must not win because it
    came last.

    >>> Rank(generation=7, applied_offset=10) > Rank(generation=6, applied_offset=99)
    True
    """

    generation: int
    applied_offset: int


class SnapshotCodec:
    """Encode and verify symbol snapshots for one model.

    >>> from tickcast.predictor.models import model_spec
    >>> from tickcast.predictor.forecaster import Forecaster
    >>> from tickcast.common.records import Tick, Lineage
    >>> f = Forecaster(model_spec("linear"), worker="w")
    >>> _ = f.process(Tick("SPY", 100.0, 1.0, 0), Lineage("ticks", 2, 41, 0), now_us=0)
    >>> codec = SnapshotCodec(b"secret", "linear", "1", worker="w")
    >>> data = codec.encode("SPY", f.states["SPY"], created_at=5, generation=3)
    >>> restored = codec.decode(data)
    >>> restored.symbol, restored.partition, restored.applied_offset, restored.generation, restored.state.ticks_seen
    ('SPY', 2, 41, 3, 1)
    >>> codec.rank(data)
    Rank(generation=3, applied_offset=41)
    >>> SnapshotCodec(b"other", "linear", "1", worker="w").decode(data)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tickcast.predictor.snapshots.SnapshotRefused: bad_signature: snapshot of 'SPY' (partition 2) does not ...
    """

    def __init__(
        self,
        key: bytes,
        model_name: str,
        model_recipe_version: str,
        worker: str,
        river_version: str = river.__version__,
    ) -> None:
        if not key:
            raise ValueError("a snapshot key is required to sign snapshots")
        self._key = key
        self.model_name = model_name
        self.model_recipe_version = model_recipe_version
        self.river_version = river_version
        self.worker = worker
        self._avro = AvroCodec(open_schema_store(None), "snapshots-value", load_schema(SNAPSHOT_SCHEMA_FILE))

    def _sign(self, record: dict[str, Any]) -> bytes:
        unsigned = self._avro.encode({**record, "signature": b""})
        return hmac.new(self._key, unsigned, hashlib.sha256).digest()

    def encode(self, symbol: str, state: SymbolState, created_at: int, generation: int = -1) -> bytes:
        record: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "symbol": symbol,
            "partition": state.partition,
            "applied_offset": state.applied_offset,
            "ticks_learned": state.ticks_learned,
            "model_name": self.model_name,
            "model_version": self.model_recipe_version,
            "river_version": self.river_version,
            "generation": generation,
            "created_at": created_at,
            "worker": self.worker,
            "payload": pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL),
        }
        record["signature"] = self._sign(record)
        return self._avro.encode(record)

    def rank(self, data: bytes) -> Rank | None:
        """How current a snapshot is, from its signed fields (nothing unpickled); None if it is not ours to trust."""
        try:
            record = self._verified(data)
        except SnapshotRefused:
            return None
        return Rank(record["generation"], record["applied_offset"])

    def _verified(self, data: bytes) -> dict[str, Any]:
        try:
            record = self._avro.decode(data)
        except Rejected as exc:
            raise SnapshotRefused(RefusalReason.UNDECODABLE, f"not a tickcast snapshot record: {exc}") from exc
        where = f"snapshot of {record['symbol']!r} (partition {record['partition']})"
        if data[1:5] != self._avro.schema_id.to_bytes(4, "big"):
            # An earlier contract version (e.g. id 3, before snapshots named their River release). Its signature
            # covers that version's encoding, and its pickle may not load under this River: start fresh.
            raise SnapshotRefused(
                RefusalReason.OTHER_RIVER,
                f"{where} was written with an earlier snapshot contract (schema id "
                f"{int.from_bytes(data[1:5], 'big')}) that does not name its River release; the symbol starts fresh",
            )
        signature = record["signature"]
        if not signature:
            raise SnapshotRefused(RefusalReason.UNSIGNED, f"{where} is unsigned; refusing to unpickle it")
        if not hmac.compare_digest(signature, self._sign(record)):
            raise SnapshotRefused(
                RefusalReason.BAD_SIGNATURE,
                f"{where} does not carry a valid signature for TICKCAST_SNAPSHOT_KEY; refusing to unpickle it",
            )
        return record

    def decode(self, data: bytes) -> Snapshot:
        """Verify, then unpickle; raise :class:`SnapshotRefused` for anything untrusted or foreign."""
        record = self._verified(data)
        where = f"snapshot of {record['symbol']!r} (partition {record['partition']})"
        if record["format_version"] != FORMAT_VERSION:
            raise SnapshotRefused(
                RefusalReason.UNKNOWN_FORMAT,
                f"{where} has format {record['format_version']}, this worker reads format {FORMAT_VERSION}; "
                "the symbol starts fresh (upgrade the worker to keep its state)",
            )
        if (record["model_name"], record["model_version"]) != (self.model_name, self.model_recipe_version):
            raise SnapshotRefused(
                RefusalReason.OTHER_MODEL,
                f"{where} was made by model {record['model_name']} v{record['model_version']}, this worker runs "
                f"{self.model_name} v{self.model_recipe_version}; the symbol starts fresh",
            )
        if record["river_version"] != self.river_version:
            # A pickled River model from another release may fail to load, or load and behave differently.
            raise SnapshotRefused(
                RefusalReason.OTHER_RIVER,
                f"{where} was pickled with River {record['river_version'] or 'unknown'}, this worker runs River "
                f"{self.river_version}; the symbol starts fresh",
            )
        try:
            state = pickle.loads(record["payload"])  # only reached with a verified signature
        except Exception as exc:
            raise SnapshotRefused(RefusalReason.UNDECODABLE, f"{where} payload does not unpickle: {exc}") from exc
        if not isinstance(state, SymbolState):
            raise SnapshotRefused(RefusalReason.UNDECODABLE, f"{where} payload is a {type(state).__name__}")
        return Snapshot(
            record["symbol"],
            record["partition"],
            record["applied_offset"],
            record["created_at"],
            record["worker"],
            state,
            record["generation"],
        )
