"""A broker that answers but refuses us (a failed SASL login, a TLS handshake that fails) as one clear line.

Unlike an unreachable broker, a refusal does not heal by retrying, so the readiness checks stop at the first
one. The lines name the broker, the cause and, for a login, the user and mechanism; never the password.
"""

from __future__ import annotations

import re
from typing import Literal

from confluent_kafka import KafkaError

from tickcast.common.security import KafkaClientSettings

Refusal = Literal["login", "tls"]

#: librdkafka's error text starts with the connection's name and ends with the state it failed in.
_CONNECTION_PREFIX = re.compile(r"^\S+://\S+?/\S+: ")
_STATE_SUFFIX = re.compile(r"\s*\(after \d+ms in state \w+\)$")
#: OpenSSL's error code in front of its reason, and librdkafka's generic advice after it.
_OPENSSL_CODE = re.compile(r"error:[0-9A-Fa-f]+:[\w ]+::")
_LIBRDKAFKA_ADVICE = re.compile(r", verify that ssl\.ca\.location .*$")


class BrokerRefused(Exception):
    """The broker answered but refused the login or the TLS handshake; retrying will not help."""


def librdkafka_reason(text: str) -> str:
    """librdkafka's error text without the connection name in front and the state behind.

    >>> librdkafka_reason("sasl_ssl://k:9093/bootstrap: SASL authentication error: bad password "
    ...                   "(after 45ms in state AUTH_REQ)")
    'SASL authentication error: bad password'
    """
    return _STATE_SUFFIX.sub("", _CONNECTION_PREFIX.sub("", text.strip()))


def tls_reason(text: str) -> str:
    """The part of librdkafka's TLS error a user acts on (the message names the CA setting itself).

    >>> tls_reason("SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker "
    ...            "certificate could not be verified, verify that ssl.ca.location is correctly configured")
    'certificate verify failed: broker certificate could not be verified'
    """
    return _LIBRDKAFKA_ADVICE.sub("", _OPENSSL_CODE.sub("", text.removeprefix("SSL handshake failed: ")))


def refusal_message(kafka: KafkaClientSettings, refusal: Refusal, reason: str) -> str:
    """The one line a user sees: which broker, what failed, for whom, and why.

    >>> settings = KafkaClientSettings(bootstrap_servers="k:9093", security_protocol="SASL_PLAINTEXT",
    ...     sasl_mechanism="SCRAM-SHA-256", sasl_username="predictor", sasl_password="pw")
    >>> refusal_message(settings, "login", "unknown-user")
    'Kafka at k:9093: authentication failed for user predictor (SCRAM-SHA-256): unknown-user'
    >>> message = refusal_message(KafkaClientSettings(bootstrap_servers="k:9093", security_protocol="SSL"),
    ...                           "tls", "expired")
    >>> for part in message.split("; "): print(part)
    Kafka at k:9093: TLS handshake failed: expired (trusted CAs: the system's
    set TICKCAST_SSL_CA_LOCATION
    its certificate must name the host dialled)
    """
    if refusal == "login":
        return (
            f"Kafka at {kafka.bootstrap_servers}: authentication failed for user {kafka.sasl_username} "
            f"({kafka.sasl_mechanism}): {reason}"
        )
    trusted = (
        f"TICKCAST_SSL_CA_LOCATION={kafka.ssl_ca_location}"
        if kafka.ssl_ca_location
        else "the system's; set TICKCAST_SSL_CA_LOCATION"
    )
    # librdkafka says "could not be verified" for a name that does not match, too: say that the name counts.
    names = (
        "; its certificate must name the host dialled" if kafka.ssl_endpoint_identification_algorithm == "https" else ""
    )
    return f"Kafka at {kafka.bootstrap_servers}: TLS handshake failed: {reason} (trusted CAs: {trusted}{names})"


class RefusalWatch:
    """A librdkafka ``error_cb`` that remembers the last refusal; :meth:`raise_if_refused` reports it.

    >>> watch = RefusalWatch(KafkaClientSettings(bootstrap_servers="k:1"))
    >>> watch(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    >>> watch.raise_if_refused()
    >>> watch.last_error
    '1/1 brokers are down'
    """

    def __init__(self, kafka: KafkaClientSettings) -> None:
        self.kafka = kafka
        self.refused: str | None = None
        self.last_error: str | None = None

    def __call__(self, error: KafkaError) -> None:
        reason = librdkafka_reason(error.str())
        self.last_error = reason
        if error.code() == KafkaError._AUTHENTICATION:
            self.refused = refusal_message(self.kafka, "login", reason)
        elif error.code() == KafkaError._SSL:
            self.refused = refusal_message(self.kafka, "tls", tls_reason(reason))

    def raise_if_refused(self) -> None:
        if self.refused is not None:
            raise BrokerRefused(self.refused)
