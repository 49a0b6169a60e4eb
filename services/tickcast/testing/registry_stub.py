"""A Schema Registry REST stub on loopback that serves ``schemas/catalogue.json``: same ids, no server to run.

For clients that only speak to a registry by URL (confluent-kafka's ``AvroSerializer``/``AvroDeserializer``,
Quix Streams' Avro serde): the bench's peers write predictions framed with the catalogue's ids, so tickcast's
own codec reads them. It answers the calls those serdes make and nothing else:

- ``GET /schemas/ids/{id}``: the schema of a catalogue id (404 for any other id);
- ``POST /subjects/{subject}/versions`` (register) and ``POST /subjects/{subject}`` (look up): the catalogue id
  of the posted schema, matched on the schema alone as :class:`~tickcast.common.contracts.catalogue.
  CatalogueSchemaStore` does, so a topic renamed by settings keeps its role's id. A schema the catalogue lacks
  is refused (422 on register, 404 on look-up), never added: the catalogue is the only source of ids.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from tickcast.common.contracts.base import SchemaError, schemas_dir
from tickcast.common.contracts.catalogue import CatalogueSchemaStore

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class CatalogueRegistry(ThreadingHTTPServer):
    """The stub, serving from a thread of this process on a free loopback port until :meth:`close`.

    >>> import urllib.request
    >>> with CatalogueRegistry() as registry:
    ...     answer = urllib.request.urlopen(f"{registry.url}/schemas/ids/1").read()
    >>> json.loads(json.loads(answer)["schema"])["name"]
    'Tick'
    """

    daemon_threads = True

    def __init__(self, store: CatalogueSchemaStore | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.store = store or CatalogueSchemaStore.from_dir(schemas_dir())
        self._thread = threading.Thread(target=self.serve_forever, name="registry-stub", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(5)

    def __enter__(self) -> CatalogueRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    server: CatalogueRegistry

    def log_message(self, format: str, *args: object) -> None:
        pass  # a bench's output is its report, not an access log

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: int, message: str) -> None:
        self._answer(status, {"error_code": code, "message": message})

    def _parts(self) -> list[str]:
        return [unquote(part) for part in urlsplit(self.path).path.strip("/").split("/")]

    def do_GET(self) -> None:
        parts = self._parts()
        if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
            schema = self.server.store.lookup(int(parts[2]))
            if schema is None:
                self._error(404, 40403, f"Schema {parts[2]} not found")
            else:
                self._answer(200, {"schema": json.dumps(schema)})
            return
        self._error(404, 404, f"the registry stub does not serve GET {self.path}")

    def do_POST(self) -> None:
        parts = self._parts()
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            schema = json.loads(body["schema"])
        except (ValueError, KeyError, TypeError) as exc:
            self._error(422, 42201, f"Invalid schema: {exc}")
            return
        if parts[0] != "subjects" or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "versions"):
            self._error(404, 404, f"the registry stub does not serve POST {self.path}")
            return
        subject = parts[1]
        try:
            schema_id = self.server.store.register(subject, schema)
        except SchemaError as exc:
            if len(parts) == 3:
                self._error(422, 42201, str(exc))
            else:  # what a registry says when it does not hold the schema under the subject
                self._error(404, 40403, str(exc))
            return
        if len(parts) == 3:  # register: a real registry answers the id alone
            self._answer(200, {"id": schema_id})
        else:  # look up
            self._answer(200, {"subject": subject, "id": schema_id, "version": 1, "schema": body["schema"]})
