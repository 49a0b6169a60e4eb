"""Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary body.

Any Confluent-compatible client (Java, Go, .NET) reads what this writes, and
this reads what they write, resolving the writer's schema by id.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import fastavro
from fastavro.types import Schema

from tickcast.common.contracts.base import SchemaError, SchemaStore
from tickcast.common.contracts.reader import NotClean, compile_reader
from tickcast.common.contracts.writer import RecordWriter
from tickcast.common.errors import Reason, Rejected

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")
HEADER_SIZE = HEADER.size


def frame(schema_id: int, body: bytes) -> bytes:
    """Prefix an Avro body with the Confluent header.

    >>> frame(1, b"\\x02") == b"\\x00\\x00\\x00\\x00\\x01\\x02"
    True
    """
    return HEADER.pack(MAGIC_BYTE, schema_id) + body


def unframe(data: bytes) -> tuple[int, memoryview]:
    """Split a framed record into (schema id, Avro body), or raise :class:`Rejected`.

    >>> unframe(b"\\x00\\x00\\x00\\x00\\x07abc")[0]
    7
    >>> unframe(b"\\x01\\x00\\x00\\x00\\x07abc")
    Traceback (most recent call last):
    ...
    tickcast.common.errors.Rejected: bad_magic_byte: first byte is 0x01, expected 0x00 (Confluent wire format)
    """
    if not data:
        raise Rejected(Reason.EMPTY_VALUE, "record value is empty")
    if data[0] != MAGIC_BYTE:
        raise Rejected(Reason.BAD_MAGIC, f"first byte is 0x{data[0]:02x}, expected 0x00 (Confluent wire format)")
    if len(data) < HEADER_SIZE:
        raise Rejected(Reason.TRUNCATED, f"record is {len(data)} bytes, shorter than the 5-byte header")
    _, schema_id = HEADER.unpack_from(data)
    return schema_id, memoryview(data)[HEADER_SIZE:]


def without_logical_types(schema: Any) -> Any:
    """The same schema with ``logicalType`` annotations removed.

    The wire bytes are identical; the codec just keeps timestamps as integer
    milliseconds instead of building a ``datetime`` per field on the hot path.

    >>> without_logical_types({"type": "long", "logicalType": "timestamp-millis"})
    {'type': 'long'}
    """
    if isinstance(schema, dict):
        return {k: without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [without_logical_types(v) for v in schema]
    return schema


class AvroCodec:
    """Encode records of one contract, decode records written with any schema the store knows.

    >>> from tickcast.common.contracts import open_schema_store, load_schema
    >>> codec = AvroCodec(open_schema_store(None), "ticks-value", load_schema("tick.avsc"))
    >>> data = codec.encode({"symbol": "SPY", "price": 1.5, "size": 10.0, "event_time": 0})
    >>> data[:5].hex(), codec.decode(data)["symbol"]
    ('0000000001', 'SPY')
    """

    def __init__(self, store: SchemaStore, subject: str, schema: dict[str, Any]) -> None:
        self._store = store
        self.schema_id = store.register(subject, schema)
        self._schema: Schema = fastavro.parse_schema(without_logical_types(schema))
        self._header = HEADER.pack(MAGIC_BYTE, self.schema_id)
        self._writers: dict[int, Schema] = {self.schema_id: self._schema}
        self._raw_schema = schema
        self._object_writer: RecordWriter | None = None
        plain = without_logical_types(schema)
        self.field_names: tuple[str, ...] = tuple(f["name"] for f in plain.get("fields", ()))
        """The record's field names in schema order: the order :meth:`decode_values` returns them in."""
        self._fields_reader = compile_reader(plain["fields"], HEADER_SIZE) if plain.get("type") == "record" else None

    def encode(self, record: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        out.write(self._header)
        fastavro.schemaless_writer(out, self._schema, record)
        return out.getvalue()

    def encode_object(self, obj: Any) -> bytes:
        """Like :meth:`encode`, taking each field as an attribute of ``obj``: no dict, and ~2x faster.

        The writer is compiled on first use (:class:`~tickcast.common.contracts.writer.RecordWriter`),
        so a codec whose schema it does not cover still encodes dicts.

        >>> from tickcast.common.contracts import open_schema_store, load_schema
        >>> from tickcast.common.records import Tick
        >>> codec = AvroCodec(open_schema_store(None), "ticks-value", load_schema("tick.avsc"))
        >>> tick = Tick("SPY", 1.5, 10.0, 0)
        >>> codec.encode_object(tick) == codec.encode(tick.to_avro())
        True
        """
        writer = self._object_writer
        if writer is None:
            writer = self._object_writer = RecordWriter(self._raw_schema)
        return writer.encode(obj, self._header)

    def decode(self, data: bytes) -> dict[str, Any]:
        """Decode a framed record into a dict shaped by this codec's (reader) schema; raise :class:`Rejected`."""
        schema_id, body = unframe(data)
        writer = self._writer_schema(schema_id)
        buffer = io.BytesIO(body)
        try:
            if writer is self._schema:
                record = fastavro.schemaless_reader(buffer, self._schema, None)
            else:
                record = fastavro.schemaless_reader(buffer, writer, self._schema)
        except (EOFError, StopIteration) as exc:
            raise Rejected(Reason.TRUNCATED, f"Avro body ends early for schema id {schema_id}") from exc
        except IndexError as exc:
            # fastavro reading a number past the end: a body cut inside one, or garbage (which a test calls bad_avro).
            raise Rejected(
                Reason.BAD_AVRO,
                f"Avro body runs out inside a value of schema id {schema_id} (cut short, or not this schema)",
            ) from exc
        except Exception as exc:  # fastavro raises many types on garbage input
            raise Rejected(
                Reason.BAD_AVRO,
                f"Avro body does not match schema id {schema_id}: {type(exc).__name__}: {exc}",
            ) from exc
        if buffer.tell() != len(body):
            raise Rejected(
                Reason.BAD_AVRO,
                f"{len(body) - buffer.tell()} trailing bytes after the Avro record (schema id {schema_id})",
            )
        if not isinstance(record, dict):
            raise Rejected(Reason.BAD_AVRO, f"schema id {schema_id} does not describe a record")
        return record

    def decode_values(self, data: bytes) -> tuple[Any, ...]:
        """Like :meth:`decode`, returning the field values in :attr:`field_names` order instead of a dict.

        A clean record written with this codec's own schema is read by a compiled reader
        (:mod:`tickcast.common.contracts.reader`, ~3x faster); any other record, and any record that
        reader does not vouch for, goes through :meth:`decode`, so the values and every
        :class:`Rejected` are exactly :meth:`decode`'s.

        >>> from tickcast.common.contracts import open_schema_store, load_schema
        >>> codec = AvroCodec(open_schema_store(None), "ticks-value", load_schema("tick.avsc"))
        >>> data = codec.encode({"symbol": "SPY", "price": 1.5, "size": 10.0, "event_time": 7})
        >>> codec.decode_values(data)
        ('SPY', 1.5, 10.0, 7, None, None)
        >>> codec.decode_values(data + b"x")
        Traceback (most recent call last):
        ...
        tickcast.common.errors.Rejected: bad_avro: 1 trailing bytes after the Avro record (schema id 1)
        """
        reader = self._fields_reader
        if reader is not None and data.startswith(self._header):
            try:
                return reader(data)
            except (NotClean, IndexError, struct.error, UnicodeDecodeError):
                pass  # not one the compiled reader vouches for: fastavro decodes it, or says what is wrong
        record = self.decode(data)
        return tuple(record[name] for name in self.field_names)

    def _writer_schema(self, schema_id: int) -> Schema:
        writer = self._writers.get(schema_id)
        if writer is None:
            try:
                raw = self._store.lookup(schema_id)
            except SchemaError as exc:
                # The store could not say (registry down or slow): the record is kept, and replayable, as a
                # dead letter; the store bounds how long this took and how often it is retried.
                raise Rejected(Reason.UNKNOWN_SCHEMA, f"schema id {schema_id}: {exc}") from exc
            if raw is None:
                raise Rejected(Reason.UNKNOWN_SCHEMA, f"schema id {schema_id} is not known to the schema store")
            try:
                writer = fastavro.parse_schema(without_logical_types(raw))
            except Exception as exc:
                raise Rejected(
                    Reason.UNKNOWN_SCHEMA, f"schema id {schema_id} is not a valid Avro schema: {exc}"
                ) from exc
            self._writers[schema_id] = writer
        return writer
