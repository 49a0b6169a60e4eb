"""How every tickcast client reaches Kafka: bootstrap servers, TLS and SASL, read from ``TICKCAST_*``.

The names follow librdkafka's properties (``TICKCAST_SECURITY_PROTOCOL`` is ``security.protocol``,
``TICKCAST_SASL_USERNAME`` is ``sasl.username``, ...). :class:`KafkaClientSettings` is the base of every
service's settings, and the pure functions below turn it into what each client library takes: a librdkafka
config, Faust's ``broker_credentials`` (aiokafka), and the Schema Registry client's TLS and basic auth.
A setting that the chosen protocol would not use is refused, not ignored.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_TLS_PROTOCOLS = ("SSL", "SASL_SSL")
_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


class KafkaClientSettings(BaseSettings):
    """Where Kafka is and how to prove who we are to it; the base of every service's settings.

    >>> s = KafkaClientSettings(bootstrap_servers="k:9093", security_protocol="SASL_PLAINTEXT",
    ...                         sasl_username="predictor", sasl_password="s3cret")
    >>> s.sasl_mechanism, s.sasl_password
    ('SCRAM-SHA-512', SecretStr('**********'))
    """

    # hide_input_in_errors: a rule across fields would otherwise print every setting, the password too.
    # allow_inf_nan=False: no setting means anything at inf or nan, and a bound such as gt=0 alone lets inf
    # through (TICKCAST_CONNECT_TIMEOUT_S=inf waited for an unreachable broker forever). Subclasses inherit it.
    model_config = SettingsConfigDict(
        env_prefix="TICKCAST_", frozen=True, extra="ignore", hide_input_in_errors=True, allow_inf_nan=False
    )

    bootstrap_servers: str = Field("localhost:9092", description="Kafka bootstrap servers, comma-separated host:port.")
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="How clients talk to the brokers: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_mechanism: SaslMechanism = Field(
        "SCRAM-SHA-512", description="SASL mechanism for the SASL_* protocols: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
    )
    sasl_username: str | None = Field(None, description="SASL user (the service's Kafka principal).")
    sasl_password: SecretStr | None = Field(None, description="SASL password; never logged or printed.")
    ssl_ca_location: Path | None = Field(
        None, description="PEM file of the CA(s) that signed the brokers' certificates; unset = the system's CAs."
    )
    ssl_certificate_location: Path | None = Field(None, description="PEM client certificate (mutual TLS).")
    ssl_key_location: Path | None = Field(None, description="PEM private key of the client certificate.")
    ssl_key_password: SecretStr | None = Field(None, description="Password of the client key, if it is encrypted.")
    ssl_endpoint_identification_algorithm: Literal["https", "none"] = Field(
        "https", description="https = the broker's certificate must name the host we dialled; none = do not check."
    )
    schema_registry_ca_location: Path | None = Field(
        None,
        description="PEM file of the CA(s) that signed the Schema Registry's certificate; unset = "
        "TICKCAST_SSL_CA_LOCATION, else the system's CAs.",
    )
    schema_registry_username: str | None = Field(None, description="Basic-auth user of the Schema Registry.")
    schema_registry_password: SecretStr | None = Field(None, description="Basic-auth password of the Schema Registry.")
    schema_registry_timeout_s: float = Field(
        5.0, gt=0, le=60, description="Longest one registry request may take (a worker's loop waits for it)."
    )
    schema_registry_unknown_id_ttl_s: float = Field(
        60.0, ge=0, le=86_400, description="How long an id the registry does not know is remembered as unknown."
    )
    schema_registry_failure_ttl_s: float = Field(
        5.0, ge=0, le=3_600, description="How long an id whose lookup failed (timeout, 5xx) is not asked again."
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_are_host_port(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {server.strip()!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> KafkaClientSettings:
        protocol = self.security_protocol
        if protocol in _SASL_PROTOCOLS:
            if not self.sasl_username or self.sasl_password is None or not self.sasl_password.get_secret_value():
                raise ValueError(
                    f"TICKCAST_SECURITY_PROTOCOL={protocol} needs TICKCAST_SASL_USERNAME and TICKCAST_SASL_PASSWORD"
                )
        elif self.sasl_username or self.sasl_password is not None:
            raise ValueError(
                f"TICKCAST_SASL_USERNAME/PASSWORD are set but TICKCAST_SECURITY_PROTOCOL={protocol} does not use "
                "SASL (use SASL_SSL or SASL_PLAINTEXT)"
            )
        files = {
            "TICKCAST_SSL_CA_LOCATION": self.ssl_ca_location,
            "TICKCAST_SSL_CERTIFICATE_LOCATION": self.ssl_certificate_location,
            "TICKCAST_SSL_KEY_LOCATION": self.ssl_key_location,
        }
        given = [name for name, path in files.items() if path is not None]
        if given and protocol not in _TLS_PROTOCOLS:
            raise ValueError(
                f"{', '.join(given)} set but TICKCAST_SECURITY_PROTOCOL={protocol} does not use TLS "
                "(use SSL or SASL_SSL)"
            )
        for name, path in files.items():
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: file not found: {path}")
        if (self.ssl_certificate_location is None) != (self.ssl_key_location is None):
            raise ValueError("TICKCAST_SSL_CERTIFICATE_LOCATION and TICKCAST_SSL_KEY_LOCATION go together")
        if self.ssl_key_password is not None and self.ssl_key_location is None:
            raise ValueError("TICKCAST_SSL_KEY_PASSWORD is set without TICKCAST_SSL_KEY_LOCATION")
        registry_ca = self.schema_registry_ca_location
        if registry_ca is not None and not registry_ca.is_file():
            raise ValueError(f"TICKCAST_SCHEMA_REGISTRY_CA_LOCATION: file not found: {registry_ca}")
        if (self.schema_registry_username is None) != (self.schema_registry_password is None):
            raise ValueError("TICKCAST_SCHEMA_REGISTRY_USERNAME and TICKCAST_SCHEMA_REGISTRY_PASSWORD go together")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in _TLS_PROTOCOLS

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in _SASL_PROTOCOLS


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def librdkafka_security(settings: KafkaClientSettings) -> dict[str, Any]:
    """The security part of a confluent-kafka (librdkafka) client config.

    >>> librdkafka_security(KafkaClientSettings())
    {'security.protocol': 'PLAINTEXT'}
    >>> config = librdkafka_security(KafkaClientSettings(
    ...     security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", sasl_username="u", sasl_password="p"))
    >>> config["sasl.mechanism"], config["sasl.username"], config["ssl.endpoint.identification.algorithm"]
    ('SCRAM-SHA-256', 'u', 'https')
    """
    config: dict[str, Any] = {"security.protocol": settings.security_protocol}
    if settings.uses_sasl:
        config["sasl.mechanism"] = settings.sasl_mechanism
        config["sasl.username"] = settings.sasl_username
        config["sasl.password"] = _secret(settings.sasl_password)
    if settings.uses_tls:
        config["ssl.endpoint.identification.algorithm"] = settings.ssl_endpoint_identification_algorithm
        optional = {
            "ssl.ca.location": settings.ssl_ca_location,
            "ssl.certificate.location": settings.ssl_certificate_location,
            "ssl.key.location": settings.ssl_key_location,
        }
        config.update({key: str(path) for key, path in optional.items() if path is not None})
        if settings.ssl_key_password is not None:
            config["ssl.key.password"] = _secret(settings.ssl_key_password)
    return config


def ssl_context(settings: KafkaClientSettings) -> ssl.SSLContext | None:
    """The TLS context of Python clients (aiokafka under Faust), or None when the protocol has no TLS.

    Verifies the broker's chain against ``ssl_ca_location`` (or the system's CAs), and its name unless
    hostname verification is off.

    >>> ssl_context(KafkaClientSettings()) is None
    True
    >>> ssl_context(KafkaClientSettings(security_protocol="SSL")).verify_mode == ssl.CERT_REQUIRED
    True
    """
    if not settings.uses_tls:
        return None
    ca = str(settings.ssl_ca_location) if settings.ssl_ca_location else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.check_hostname = settings.ssl_endpoint_identification_algorithm == "https"
    if settings.ssl_certificate_location is not None and settings.ssl_key_location is not None:
        context.load_cert_chain(
            settings.ssl_certificate_location, settings.ssl_key_location, _secret(settings.ssl_key_password)
        )
    return context


def faust_credentials(settings: KafkaClientSettings) -> CredentialsT | None:
    """Faust's ``broker_credentials``, which it hands to every aiokafka consumer and producer it makes.

    >>> faust_credentials(KafkaClientSettings()) is None
    True
    >>> faust_credentials(KafkaClientSettings(
    ...     security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", sasl_username="u", sasl_password="p"))
    <SASLCredentials: username=u>
    """
    # Imported here: only the worker runs Faust, and importing it costs the CLI and the producers ~0.5 s.
    from faust.auth import SASLCredentials, SSLCredentials

    context = ssl_context(settings)
    if settings.uses_sasl:
        return SASLCredentials(
            username=settings.sasl_username,
            password=_secret(settings.sasl_password),
            ssl_context=context,
            mechanism=settings.sasl_mechanism,
        )
    if context is not None:
        return SSLCredentials(context)
    return None


def schema_registry_config(settings: KafkaClientSettings, url: str) -> dict[str, Any]:
    """The Schema Registry client's config: its URL, the same CA and client certificate as Kafka, basic auth.

    >>> schema_registry_config(KafkaClientSettings(schema_registry_username="sr", schema_registry_password="pw"),
    ...                        "https://registry:8081")["basic.auth.user.info"]
    'sr:pw'
    """
    config: dict[str, Any] = {"url": url}
    optional = {
        # Its own CA when given: the registry is often signed by another CA than the brokers (a public one behind
        # an ingress, say), or served over https while Kafka is plaintext, where TICKCAST_SSL_CA_LOCATION is refused.
        "ssl.ca.location": settings.schema_registry_ca_location or settings.ssl_ca_location,
        "ssl.certificate.location": settings.ssl_certificate_location,
        "ssl.key.location": settings.ssl_key_location,
    }
    config.update({key: str(path) for key, path in optional.items() if path is not None})
    if settings.ssl_key_password is not None:
        config["ssl.key.password"] = _secret(settings.ssl_key_password)
    if settings.schema_registry_username is not None:
        config["basic.auth.user.info"] = (
            f"{settings.schema_registry_username}:{_secret(settings.schema_registry_password)}"
        )
    return config
