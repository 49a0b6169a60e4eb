"""Signed snapshots of one symbol's state, so it can follow its partition to another worker.

The payload is a pickle (River models are plain Python objects), and unpickling
runs code, so a snapshot is only unpickled after its HMAC-SHA256 signature,
made with ``TICKCAST_SNAPSHOT_KEY`` (or, while keys rotate, one of
``TICKCAST_SNAPSHOT_PREVIOUS_KEYS``), checks out. Everything else about a
snapshot is an Avro record (``schemas/snapshot.avsc``) in the Confluent wire
format, readable without unpickling anything.

The signature covers where the state belongs, not only what it is: the consumer
group, the ticks topic, the partition, the symbol and the applied offset. A
genuine snapshot copied to another symbol's key, another group's or topic's
snapshots, or re-signed with another offset is refused, so a writer to the
snapshots topic cannot replay old state to roll a symbol back.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle  # nosec B403 # only payloads with a verified HMAC are unpickled (SnapshotCodec.decode)
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import river

from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.errors import Rejected
from tickcast.predictor import snapshot_pickling
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
    MISPLACED = "misplaced"
    """Genuine, but of another group, topic or symbol than where it was found: a replay, or a misconfiguration."""
    OLD_CONTRACT = "old_contract"
    """Written under an earlier snapshot contract whose signature does not bind group and topic."""


#: Earlier snapshot contracts (schema ids of ``snapshots-value``): why each is refused, as (reason, explanation).
EARLIER_CONTRACTS: dict[int, tuple[RefusalReason, str]] = {
    3: (RefusalReason.OTHER_RIVER, "does not name its River release"),
    4: (RefusalReason.OLD_CONTRACT, "does not bind it to its consumer group and ticks topic"),
}


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
    >>> codec = SnapshotCodec(b"secret", "linear", "1", worker="w", group="g", topic="ticks")
    >>> data = codec.encode("SPY", f.states["SPY"], created_at=5, generation=3)
    >>> restored = codec.decode(data, key=b"SPY")
    >>> restored.symbol, restored.partition, restored.applied_offset, restored.generation, restored.state.ticks_seen
    ('SPY', 2, 41, 3, 1)
    >>> codec.rank(data, b"SPY"), codec.rank(data, b"QQQ")
    (Rank(generation=3, applied_offset=41), None)
    >>> SnapshotCodec(b"other", "linear", "1", worker="w", group="g", topic="ticks").decode(data)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tickcast.predictor.snapshots.SnapshotRefused: bad_signature: snapshot of 'SPY' (partition 2) does not ...

    After a key rotation, the old key still verifies (it never signs):

    >>> rotated = SnapshotCodec(b"new", "linear", "1", worker="w", previous_keys=[b"secret"], group="g", topic="ticks")
    >>> rotated.decode(data).symbol
    'SPY'
    """

    def __init__(
        self,
        key: bytes,
        model_name: str,
        model_recipe_version: str,
        worker: str,
        river_version: str = river.__version__,
        *,
        previous_keys: Sequence[bytes] = (),
        group: str = "",
        topic: str = "",
    ) -> None:
        if not key:
            raise ValueError("a snapshot key is required to sign snapshots")
        self._key = key
        # Verification tries the signing key first: outside a rotation it is the only one.
        self._verifying_keys = (key, *(k for k in previous_keys if k and k != key))
        self.group = group
        self.topic = topic
        self.model_name = model_name
        self.model_recipe_version = model_recipe_version
        self.river_version = river_version
        self.worker = worker
        self._avro = AvroCodec(open_schema_store(None), "snapshots-value", load_schema(SNAPSHOT_SCHEMA_FILE))

    def _unsigned(self, record: dict[str, Any]) -> bytes:
        # The framed encoding: the schema id is signed too, so a record cannot be passed off as another version.
        return self._avro.encode({**record, "signature": b""})

    def _sign(self, record: dict[str, Any]) -> bytes:
        return hmac.new(self._key, self._unsigned(record), hashlib.sha256).digest()

    def _signed_by_a_known_key(self, record: dict[str, Any]) -> bool:
        unsigned = self._unsigned(record)
        # Every key is tried (no early exit): the time taken does not say which key matched.
        matches = [
            hmac.compare_digest(record["signature"], hmac.new(key, unsigned, hashlib.sha256).digest())
            for key in self._verifying_keys
        ]
        return any(matches)

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
            "group": self.group,
            "topic": self.topic,
            "created_at": created_at,
            "worker": self.worker,
            # Loads with a plain pickle.loads, here and in older workers, in the compact shape it was built in.
            "payload": snapshot_pickling.dumps(state),
        }
        record["signature"] = self._sign(record)
        return self._avro.encode(record)

    def rank(self, data: bytes, key: bytes | None = None) -> Rank | None:
        """How current a snapshot found under ``key`` is, from its signed fields (nothing unpickled).

        None if it is not ours to trust: unverifiable, or genuine but belonging elsewhere.
        """
        try:
            record = self._verified(data, key)
        except SnapshotRefused:
            return None
        return Rank(record["generation"], record["applied_offset"])

    def _verified(self, data: bytes, key: bytes | None = None) -> dict[str, Any]:
        try:
            record = self._avro.decode(data)
        except Rejected as exc:
            raise SnapshotRefused(RefusalReason.UNDECODABLE, f"not a tickcast snapshot record: {exc}") from exc
        where = f"snapshot of {record['symbol']!r} (partition {record['partition']})"
        schema_id = int.from_bytes(data[1:5], "big")
        if schema_id != self._avro.schema_id:
            # An earlier contract version: its signature covers that version's encoding, and it lacks what
            # this worker checks before unpickling (see EARLIER_CONTRACTS). The symbol starts fresh.
            reason, lacking = EARLIER_CONTRACTS.get(schema_id, (RefusalReason.OLD_CONTRACT, "is not the current one"))
            raise SnapshotRefused(
                reason,
                f"{where} was written with an earlier snapshot contract (schema id {schema_id}) that {lacking}; "
                "the symbol starts fresh",
            )
        if not record["signature"]:
            raise SnapshotRefused(RefusalReason.UNSIGNED, f"{where} is unsigned; refusing to unpickle it")
        if not self._signed_by_a_known_key(record):
            raise SnapshotRefused(
                RefusalReason.BAD_SIGNATURE,
                f"{where} does not carry a valid signature for TICKCAST_SNAPSHOT_KEY or any of "
                "TICKCAST_SNAPSHOT_PREVIOUS_KEYS; refusing to unpickle it",
            )
        # Genuine from here on, so what it says about itself can be believed and shown.
        if (record["group"], record["topic"]) != (self.group, self.topic):
            raise SnapshotRefused(
                RefusalReason.MISPLACED,
                f"{where} belongs to group {record['group']!r}, topic {record['topic']!r}; this worker is group "
                f"{self.group!r}, topic {self.topic!r}; refusing it",
            )
        if key is not None and key != record["symbol"].encode("utf-8"):
            raise SnapshotRefused(
                RefusalReason.MISPLACED,
                f"{where} was found under the key {key[:64].decode('utf-8', 'replace')!r}, not its own; "
                "a replayed copy, refusing it",
            )
        return record

    def decode(self, data: bytes, key: bytes | None = None) -> Snapshot:
        """Verify (signature, and that it belongs under ``key`` when given), then unpickle.

        Raise :class:`SnapshotRefused` for anything untrusted, foreign or misplaced.
        """
        record = self._verified(data, key)
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
            # Only reached once the HMAC of a key this worker holds verified the whole record, payload included.
            state = pickle.loads(record["payload"])  # nosec B301 # signed by a holder of the snapshot key
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
