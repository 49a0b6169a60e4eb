"""Where a client's predictions come from: Kafka directly (Avro contract) or a gateway's SSE stream.

Both push ``Delivery`` items (and a gateway a :class:`Reset`) into the client's queue until cancelled, and
answer ``latest(symbol)``. The Kafka source reads whole partitions (no consumer group, nothing committed), so it
sees every offset there; a gateway stream for chosen symbols sees only theirs.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, Message, TopicPartition

from tickcast.client.records import PredictionRecord
from tickcast.client.settings import ClientSettings
from tickcast.client.tls import GatewayTlsError, answers_tls, ca_setting, https_only, tls_failure
from tickcast.common.contracts import AvroCodec, load_schema, open_schema_store
from tickcast.common.contracts.base import PREDICTION_SCHEMA_FILE
from tickcast.common.errors import Rejected
from tickcast.common.kafka import new_consumer
from tickcast.common.records import Prediction
from tickcast.common.topics import partition_for, symbol_key

if TYPE_CHECKING:
    import httpx

#: librdkafka's logical offset "N records before the end" is this base minus N.
_OFFSET_TAIL_BASE = -2000
#: ``latest()`` from Kafka looks this far back in the symbol's partition.
LATEST_LOOKBACK = 5_000


@dataclass(frozen=True, slots=True)
class Delivery:
    record: PredictionRecord
    complete: bool
    """Whether the source sees every record of the record's partition (so a skipped offset is a real gap)."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Predictions missed for good (a gateway's ``reset`` event): ``missed[partition] = (first, next)``, the
    offsets of the predictions topic from ``first`` to before ``next`` that the stream will not bring."""

    missed: dict[int, tuple[int, int]]


Item = Delivery | Reset


class Source(Protocol):
    async def run(self, symbols: frozenset[str] | None, out: asyncio.Queue[Item]) -> None: ...
    async def latest(self, symbol: str) -> PredictionRecord | None: ...


class KafkaSource:
    """Predictions straight from the predictions topic: only the partitions of the chosen symbols are read."""

    def __init__(self, settings: ClientSettings, from_beginning: bool = False) -> None:
        self.settings = settings
        self.from_beginning = from_beginning
        self._codec = AvroCodec(
            open_schema_store(settings.schema_registry_url, settings),
            f"{settings.predictions_topic}-value",
            load_schema(PREDICTION_SCHEMA_FILE),
        )

    def _consumer(self, eof: bool = False) -> Consumer:
        return new_consumer(
            self.settings,
            f"tickcast-client-{uuid.uuid4().hex[:12]}",  # required by librdkafka, never joined
            **{
                "enable.auto.commit": False,
                "enable.partition.eof": eof,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 20,
            },
        )

    def _partitions(self, symbols: frozenset[str] | None) -> list[int]:
        if symbols is None:
            return list(range(self.settings.partitions))
        return sorted({partition_for(symbol_key(s), self.settings.partitions) for s in symbols})

    def _decode(self, message: Message) -> PredictionRecord | None:
        if message.error() is not None:
            return None
        try:
            prediction = Prediction.from_avro(self._codec.decode(message.value() or b""))
        except Rejected:
            return None
        return PredictionRecord.of(prediction, message.partition() or 0, message.offset() or 0)

    async def run(self, symbols: frozenset[str] | None, out: asyncio.Queue[Item]) -> None:
        consumer = self._consumer()
        start = OFFSET_BEGINNING if self.from_beginning else OFFSET_END
        topic = self.settings.predictions_topic
        consumer.assign([TopicPartition(topic, p, start) for p in self._partitions(symbols)])
        # One thread of its own: a poll in flight when the task is cancelled finishes before the consumer closes.
        pool = ThreadPoolExecutor(1, thread_name_prefix="tickcast-client")
        pending: Future[list[Message]] | None = None
        try:
            while True:
                pending = pool.submit(consumer.consume, 1000, 0.2)
                for message in await asyncio.wrap_future(pending):
                    if (record := self._decode(message)) is not None:
                        await out.put(Delivery(record, complete=True))
        finally:
            if pending is not None:
                pending.result()
            consumer.close()
            pool.shutdown()

    async def latest(self, symbol: str) -> PredictionRecord | None:
        return await asyncio.to_thread(self._latest, symbol)

    def _latest(self, symbol: str) -> PredictionRecord | None:
        consumer = self._consumer(eof=True)
        partition = partition_for(symbol_key(symbol), self.settings.partitions)
        consumer.assign(
            [TopicPartition(self.settings.predictions_topic, partition, _OFFSET_TAIL_BASE - LATEST_LOOKBACK)]
        )
        found: PredictionRecord | None = None
        try:
            while True:
                message = consumer.poll(5.0)
                if message is None:
                    return found
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    return found
                record = self._decode(message)
                if record is not None and record.symbol == symbol:
                    found = record
        finally:
            consumer.close()


class GatewaySource:
    """Predictions from a gateway's ``/v1/stream``; reconnects with ``Last-Event-ID``: nothing lost or repeated.

    An ``https://`` URL is verified against the system's CAs, or only against ``ca_file`` (a PEM bundle, for
    a gateway whose certificate a private CA signed); a TLS failure raises :class:`GatewayTlsError`.
    """

    def __init__(
        self,
        url: str,
        reconnect_max_s: float = 5.0,
        read_timeout_s: float = 60.0,
        token: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # Sent with every request; a 401 ends the subscription with the gateway's reason (never the token).
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self.reconnect_max_s = reconnect_max_s
        self.read_timeout_s = read_timeout_s
        self.reconnects = 0
        self.ca_file = ca_file
        # Made once: a context per request would read the CA file (or the system's store) every time.
        self._verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            try:
                self._verify = ssl.create_default_context(cafile=str(ca_file))
            except ssl.SSLError as exc:
                raise GatewayTlsError(
                    f"{ca_setting(ca_file)}: no PEM certificate in it ({exc.reason or exc})"
                ) from None
            except OSError as exc:
                # OpenSSL's error names neither the file nor the setting: "[Errno 2] No such file or directory".
                raise GatewayTlsError(f"{ca_setting(ca_file)}: {exc.strerror or exc}") from None

    async def wait_reachable(self, within_s: float) -> None:
        """Return once the gateway answers HTTP at all (any status); after ``within_s``, raise ``ConnectionError``.

        :meth:`run` reconnects for ever, as a long-lived subscriber should; a URL that never answered is more
        likely a mistake, which a command says at once instead of waiting in silence.
        """
        import httpx

        deadline, backoff = time.monotonic() + within_s, 0.1
        async with httpx.AsyncClient(timeout=min(5.0, within_s), verify=self._verify) as http:
            while True:
                try:
                    await http.get(f"{self.url}/health")
                    return
                except httpx.TransportError as exc:
                    if (failed := tls_failure(exc, self.url, self.ca_file)) is not None:
                        raise failed from None
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                        message = f"gateway at {self.url} did not answer within {within_s:g}s ({reason})"
                        raise ConnectionError(message) from None
                await asyncio.sleep(min(backoff, remaining))  # backoff between attempts, not synchronisation
                backoff = min(backoff * 2, self.reconnect_max_s)

    async def run(self, symbols: frozenset[str] | None, out: asyncio.Queue[Item]) -> None:
        import httpx

        last_id: str | None = None
        backoff = 0.1
        params = {"symbols": ",".join(sorted(symbols))} if symbols else {}
        timeout = httpx.Timeout(5.0, read=self.read_timeout_s)
        async with httpx.AsyncClient(timeout=timeout, verify=self._verify) as http:
            while True:
                headers = {**self._auth, "Last-Event-ID": last_id} if last_id else dict(self._auth)
                try:
                    async with http.stream("GET", f"{self.url}/v1/stream", params=params, headers=headers) as answer:
                        # A redirect too: the same request would be sent there again (an ingress sending plain
                        # HTTP to HTTPS), and was retried for ever in silence.
                        if 300 <= answer.status_code < 500:
                            await answer.aread()
                            location = answer.headers.get("location")
                            raise ValueError(_refusal("the stream", answer.status_code, answer.text, location))
                        if answer.status_code == 200:
                            async for event in parse_sse(answer.aiter_lines()):
                                backoff = 0.1
                                if event.get("event") == "prediction":
                                    record = PredictionRecord.from_json(_json(event["data"]))
                                    await out.put(Delivery(record, complete=symbols is None))
                                elif event.get("event") == "reset":
                                    # Nothing is put before the refetch succeeds: if it fails, the stream
                                    # resumes from the id before the reset, and the gateway resets again.
                                    reset = Reset(_missed(last_id, event))
                                    fetched = await self._newest_missed(http, symbols, reset.missed)
                                    await out.put(reset)
                                    for record in fetched:
                                        await out.put(Delivery(record, complete=False))
                                last_id = event.get("id", last_id)
                                if event.get("event") == "dropped":
                                    break
                except (httpx.TransportError, httpx.StreamError, httpx.HTTPStatusError) as exc:
                    if (failed := tls_failure(exc, self.url, self.ca_file)) is not None:
                        raise failed from None
                    if isinstance(exc, httpx.RemoteProtocolError) and await answers_tls(self.url):
                        raise https_only(self.url) from None
                self.reconnects += 1
                await asyncio.sleep(backoff)  # backoff between reconnects, not synchronisation
                backoff = min(backoff * 2, self.reconnect_max_s)

    async def _newest_missed(
        self, http: httpx.AsyncClient, symbols: frozenset[str] | None, missed: dict[int, tuple[int, int]]
    ) -> list[PredictionRecord]:
        """The newest prediction of each of ``symbols`` (None: of every symbol the gateway holds) that is among
        the ``missed`` ones, in stream order: the stream brings every newer one, and never these."""
        if symbols is None:
            answer = await self._get(http, "/v1/symbols", "the symbols")
            held = answer.json()["symbols"] if answer is not None else []
            names = [s["symbol"] for s in held if _among(missed, s["partition"], s["offset"])]
        else:
            names = sorted(symbols)
        found = []
        for name in names:
            record = await self._latest(http, name)
            if record is not None and _among(missed, record.partition, record.offset):
                found.append(record)
        return sorted(found, key=lambda r: (r.partition, r.offset))

    async def latest(self, symbol: str) -> PredictionRecord | None:
        import httpx

        async with httpx.AsyncClient(timeout=5.0, verify=self._verify) as http:
            try:
                return await self._latest(http, symbol)
            except httpx.TransportError as exc:
                if (failed := tls_failure(exc, self.url, self.ca_file)) is not None:
                    raise failed from None
                if isinstance(exc, httpx.RemoteProtocolError) and await answers_tls(self.url):
                    raise https_only(self.url) from None
                raise

    async def _latest(self, http: httpx.AsyncClient, symbol: str) -> PredictionRecord | None:
        # One path segment whatever the symbol holds: as they are, the '/' and '.' a symbol may contain make
        # "A/." the path of A (dot segments are normalised away) and "A//B" one a proxy may merge into "A/B".
        path = f"/v1/predictions/{quote(symbol, safe='')}"
        answer = await self._get(http, path, f"the latest of {symbol}")
        return PredictionRecord.from_json(answer.json()) if answer is not None else None

    async def _get(self, http: httpx.AsyncClient, path: str, what: str) -> httpx.Response | None:
        """The gateway's answer to ``GET path``, None for a 404; a redirect or a refusal raises ``ValueError``."""
        answer = await http.get(f"{self.url}{path}", headers=self._auth)
        if answer.status_code == 404:
            return None
        if 300 <= answer.status_code < 500:
            location = answer.headers.get("location")
            raise ValueError(_refusal(what, answer.status_code, answer.text, location))
        answer.raise_for_status()
        return answer


def _refusal(what: str, status: int, body: str, location: str | None = None) -> str:
    """Why the gateway refused ``what``; for a 401, where a token comes from; for a redirect, where it points.

    >>> _refusal("the stream", 401, '{"error":"unauthorized"}')
    'gateway refused the stream: 401 {"error":"unauthorized"} (a token: token= or TICKCAST_CLIENT_GATEWAY_TOKEN)'
    >>> _refusal("the stream", 308, "", "https://gw/v1/stream")
    'gateway refused the stream: 308  (redirected to https://gw/v1/stream: give the client that URL)'
    """
    hint = " (a token: token= or TICKCAST_CLIENT_GATEWAY_TOKEN)" if status == 401 else ""
    if 300 <= status < 400:
        hint = f" (redirected to {location}: give the client that URL)"
    return f"gateway refused {what}: {status} {body}{hint}"


async def parse_sse(lines: Any) -> Any:
    """Events (dicts of ``id``, ``event``, ``data``) from the lines of an SSE stream; comments skipped.

    >>> async def demo():
    ...     async def lines():
    ...         for line in ["retry: 1000", "", ": keepalive", "id: 0:5", "event: prediction", "data: {}", ""]:
    ...             yield line
    ...     return [event async for event in parse_sse(lines())]
    >>> asyncio.run(demo())
    [{'retry': '1000'}, {'id': '0:5', 'event': 'prediction', 'data': '{}'}]
    """
    fields: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


def _missed(before: str | None, reset: dict[str, str]) -> dict[int, tuple[int, int]]:
    """What a ``reset`` event says was missed, per partition: from after the stream's id before it (``before``;
    -1 where it names no position) to its own id's position, the offset before the oldest one the gateway kept.
    A reset back below the id before it (that id was beyond the topic's end: the topic was recreated, or the id
    is another cluster's) says nothing of this topic was had: everything before its position was missed.

    >>> _missed("0:7,1:3", {"id": "0:7,1:20", "event": "reset", "data": '{"partitions": [1]}'})
    {1: (4, 21)}
    >>> _missed("0:900", {"id": "0:20", "event": "reset", "data": '{"partitions": [0]}'})
    {0: (0, 21)}
    """
    had, now = _positions(before or ""), _positions(reset.get("id", ""))
    partitions = _json(reset.get("data") or "{}").get("partitions", [])
    missed = {}
    for p in partitions:
        first, after = had.get(p, -1) + 1, now.get(p, -1) + 1
        missed[p] = (first if first <= after else 0, after)
    return missed


def _positions(event_id: str) -> dict[int, int]:
    """``{partition: offset}`` of a stream's event id (``0:41,1:17``)."""
    pairs = (pair.split(":") for pair in event_id.split(",") if pair)
    return {int(partition): int(offset) for partition, offset in pairs}


def _among(missed: dict[int, tuple[int, int]], partition: int, offset: int) -> bool:
    first, after = missed.get(partition, (0, 0))
    return first <= offset < after


def _json(text: str) -> dict[str, Any]:
    import json

    loaded: dict[str, Any] = json.loads(text)
    return loaded
