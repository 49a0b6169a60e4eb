"""Before Faust starts: log in once with the worker's own Kafka client (aiokafka), so a refusal is one clear line.

Faust retries a refused connection forever, and aiokafka reports a refused SCRAM login as a ``KeyError``
from deep in its exchange (it expects the server's proof and gets an error attribute instead). One
connection made here, with exactly the credentials Faust will use, turns both into
:class:`~tickcast.common.refusals.BrokerRefused` naming the broker, the user and the mechanism.
"""

from __future__ import annotations

import asyncio
import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import BrokerResponseError
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from tickcast.common.kafka import BrokerUnavailable
from tickcast.common.refusals import BrokerRefused, refusal_message
from tickcast.common.security import KafkaClientSettings, faust_credentials

#: aiokafka's SCRAM client fails with these when the server's final message is an error, not a proof.
_SCRAM_PARSE_ERRORS = (KeyError, ValueError, IndexError)


def split_server(server: str) -> tuple[str, int]:
    """``host:port`` (IPv6 in brackets) as the pair aiokafka connects to.

    >>> split_server(" [::1]:9093"), split_server("kafka-1:9092")
    (('::1', 9093), ('kafka-1', 9092))
    """
    host, _, port = server.strip().rpartition(":")
    return host.strip("[]"), int(port)


async def log_in_once(kafka: KafkaClientSettings, timeout_s: float = 10.0) -> None:
    """Open one authenticated connection to the first bootstrap server that answers, then close it.

    Raises :class:`BrokerRefused` on a refused TLS handshake or login, :class:`BrokerUnavailable` when no
    server answers.
    """
    auth = credentials_to_aiokafka_auth(faust_credentials(kafka))
    last: BaseException | None = None
    for server in kafka.bootstrap_servers.split(","):
        host, port = split_server(server)
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(timeout_s * 1000), **auth), timeout_s
            )
        except ssl.SSLCertVerificationError as exc:
            raise BrokerRefused(refusal_message(kafka, "tls", exc.verify_message or str(exc))) from None
        except ssl.SSLError as exc:
            raise BrokerRefused(refusal_message(kafka, "tls", exc.reason or str(exc))) from None
        except BrokerResponseError as exc:
            if not kafka.uses_sasl:
                raise
            raise BrokerRefused(refusal_message(kafka, "login", str(exc))) from None
        except _SCRAM_PARSE_ERRORS:
            if not kafka.uses_sasl:
                raise
            reason = "the broker ended the SCRAM exchange without accepting the password"
            raise BrokerRefused(refusal_message(kafka, "login", reason)) from None
        except (TimeoutError, OSError) as exc:
            last = exc
            continue
        conn.close()
        return
    raise BrokerUnavailable(f"Kafka at {kafka.bootstrap_servers} did not answer the worker's client: {last}")


def check_login(kafka: KafkaClientSettings, timeout_s: float = 10.0) -> None:
    """:func:`log_in_once`, from synchronous code (before Faust's event loop exists)."""
    asyncio.run(log_in_once(kafka, timeout_s))
