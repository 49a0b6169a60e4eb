"""TLS and SASL settings (``tickcast.common.security``): what is refused and how it reads, what each client library
is given, and that librdkafka, aiokafka (through Faust) and the Schema Registry client accept it."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from tickcast.common.kafka import producer_config
from tickcast.common.security import (
    KafkaClientSettings,
    faust_credentials,
    librdkafka_security,
    schema_registry_config,
    ssl_context,
)
from tickcast.common.settings import CommonSettings
from tickcast.testing.environment import base_env

PASSWORD = "hunter2-but-longer"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA file, and a client certificate and key signed by it."""
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    client = ca.issue_cert("tickcast-client")
    paths = {"ca": directory / "ca.pem", "cert": directory / "client.pem", "key": directory / "client.key"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    client.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    client.private_key_pem.write_to_path(str(paths["key"]))
    return paths


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"security_protocol": "SASL_SSL"}, "SASL_SSL needs TICKCAST_SASL_USERNAME and TICKCAST_SASL_PASSWORD"),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u", "sasl_password": ""},
            "SASL_PLAINTEXT needs TICKCAST_SASL_USERNAME and TICKCAST_SASL_PASSWORD",
        ),
        ({"sasl_username": "u", "sasl_password": PASSWORD}, "PROTOCOL=PLAINTEXT does not use SASL"),
        ({"ssl_ca_location": "/etc/hostname"}, "TICKCAST_SSL_CA_LOCATION set but TICKCAST_SECURITY_PROTOCOL=PLAINTEXT"),
        (
            {"security_protocol": "SSL", "ssl_ca_location": "/no/such/ca.pem"},
            "TICKCAST_SSL_CA_LOCATION: file not found: /no/such/ca.pem",
        ),
        ({"security_protocol": "SSL", "ssl_certificate_location": "/etc/hostname"}, "go together"),
        ({"security_protocol": "SSL", "ssl_key_password": "x"}, "TICKCAST_SSL_KEY_PASSWORD is set without"),
        ({"schema_registry_username": "u"}, "TICKCAST_SCHEMA_REGISTRY_USERNAME and TICKCAST_SCHEMA_REGISTRY_PASSWORD"),
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
    ],
)
def test_inconsistent_settings_are_refused_saying_why(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        KafkaClientSettings(**fields)
    assert message in str(info.value)
    assert PASSWORD not in str(info.value), "a settings error may be logged: it must not hold the password"


def test_every_service_reads_the_security_variables(monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]) -> None:
    monkeypatch.setenv("TICKCAST_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TICKCAST_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("TICKCAST_SASL_USERNAME", "predictor")
    monkeypatch.setenv("TICKCAST_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("TICKCAST_SSL_CA_LOCATION", str(pki["ca"]))
    monkeypatch.setenv("TICKCAST_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", "none")
    for cls in CommonSettings.__subclasses__():
        config = librdkafka_security(cls())
        assert config == {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "predictor",
            "sasl.password": PASSWORD,
            "ssl.ca.location": str(pki["ca"]),
            "ssl.endpoint.identification.algorithm": "none",
        }, cls.__name__
        assert PASSWORD not in repr(cls()), "settings are logged: the password must not show in their repr"


def test_librdkafka_accepts_the_config_of_every_protocol(pki: dict[str, Path]) -> None:
    # librdkafka refuses unknown or malformed properties when the client is built, and loads the files then.
    mutual_tls = {"ssl_certificate_location": pki["cert"], "ssl_key_location": pki["key"]}
    sasl = {"sasl_username": "u", "sasl_password": PASSWORD}
    for fields in (
        {"security_protocol": "PLAINTEXT"},
        {"security_protocol": "SSL", "ssl_ca_location": pki["ca"], **mutual_tls},
        {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", **sasl},
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "ssl_ca_location": pki["ca"], **sasl},
    ):
        Producer({**producer_config(KafkaClientSettings(bootstrap_servers="127.0.0.1:1", **fields)), "log_level": 0})


def test_tls_context_trusts_the_configured_ca_and_checks_names_unless_told_not_to(pki: dict[str, Path]) -> None:
    settings = KafkaClientSettings(security_protocol="SSL", ssl_ca_location=pki["ca"])
    context = ssl_context(settings)
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 1, "only the configured CA, not the system's"
    lax = ssl_context(settings.model_copy(update={"ssl_endpoint_identification_algorithm": "none"}))
    assert lax is not None and not lax.check_hostname and lax.verify_mode == ssl.CERT_REQUIRED
    with_client_cert = KafkaClientSettings(
        security_protocol="SSL", ssl_certificate_location=pki["cert"], ssl_key_location=pki["key"]
    )
    assert ssl_context(with_client_cert) is not None  # load_cert_chain raised nothing: the pair matches


@pytest.mark.parametrize(
    ("protocol", "credentials_type"),
    [("SSL", SSLCredentials), ("SASL_PLAINTEXT", SASLCredentials), ("SASL_SSL", SASLCredentials)],
)
def test_faust_hands_aiokafka_the_same_protocol_user_and_tls(
    protocol: str, credentials_type: type, pki: dict[str, Path]
) -> None:
    sasl = {"sasl_username": "predictor", "sasl_password": PASSWORD} if "SASL" in protocol else {}
    tls = {"ssl_ca_location": pki["ca"]} if "SSL" in protocol else {}
    settings = KafkaClientSettings(security_protocol=protocol, sasl_mechanism="SCRAM-SHA-256", **sasl, **tls)
    credentials = faust_credentials(settings)
    assert isinstance(credentials, credentials_type)
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == protocol
    assert (auth["ssl_context"] is not None) == ("SSL" in protocol)
    if sasl:
        assert (auth["sasl_mechanism"], auth["sasl_plain_username"]) == ("SCRAM-SHA-256", "predictor")
        assert PASSWORD not in repr(credentials)


def test_schema_registry_client_accepts_the_tls_and_basic_auth_config(pki: dict[str, Path]) -> None:
    settings = KafkaClientSettings(
        security_protocol="SSL",
        ssl_ca_location=pki["ca"],
        ssl_certificate_location=pki["cert"],
        ssl_key_location=pki["key"],
        schema_registry_username="registry",
        schema_registry_password="pw",
    )
    config = schema_registry_config(settings, "https://registry:8081")
    assert config["ssl.ca.location"] == str(pki["ca"]) and config["basic.auth.user.info"] == "registry:pw"
    SchemaRegistryClient(config)  # refuses unknown keys and a key without its certificate


def test_the_registry_has_its_own_ca_whatever_kafka_uses(pki: dict[str, Path], tmp_path: Path) -> None:
    # A registry over https while Kafka is plaintext (where TICKCAST_SSL_CA_LOCATION is refused), or signed by
    # another CA than the brokers: with only the Kafka CA, a real registry's certificate could not be verified.
    plaintext_kafka = KafkaClientSettings(schema_registry_ca_location=pki["ca"])
    config = schema_registry_config(plaintext_kafka, "https://registry:8081")
    assert config["ssl.ca.location"] == str(pki["ca"])
    SchemaRegistryClient(config)
    brokers_ca = tmp_path / "brokers.pem"
    trustme.CA().cert_pem.write_to_path(str(brokers_ca))
    tls_kafka = KafkaClientSettings(
        security_protocol="SSL", ssl_ca_location=brokers_ca, schema_registry_ca_location=pki["ca"]
    )
    assert schema_registry_config(tls_kafka, "https://registry:8081")["ssl.ca.location"] == str(pki["ca"])
    assert librdkafka_security(tls_kafka)["ssl.ca.location"] == str(brokers_ca)
    tls_kafka_only = KafkaClientSettings(security_protocol="SSL", ssl_ca_location=brokers_ca)
    assert schema_registry_config(tls_kafka_only, "https://registry:8081")["ssl.ca.location"] == str(brokers_ca)
    with pytest.raises(ValidationError, match="TICKCAST_SCHEMA_REGISTRY_CA_LOCATION: file not found"):
        KafkaClientSettings(schema_registry_ca_location=tmp_path / "missing.pem")


def test_a_bad_security_setting_is_one_line_without_the_password() -> None:
    env = {
        **base_env(),
        "TICKCAST_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "TICKCAST_SASL_USERNAME": "predictor",
        "TICKCAST_SASL_PASSWORD": PASSWORD,  # but the protocol is PLAINTEXT: it would be ignored
    }
    done = subprocess.run(
        [sys.executable, "-m", "tickcast", "produce", "synthetic", "--count", "1"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "tickcast: error: invalid configuration: TICKCAST_SASL_USERNAME/PASSWORD are set but "
        "TICKCAST_SECURITY_PROTOCOL=PLAINTEXT does not use SASL (use SASL_SSL or SASL_PLAINTEXT)"
    ], done.stderr
    assert PASSWORD not in done.stdout + done.stderr
