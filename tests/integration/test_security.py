"""TLS and SASL for real: the pipeline over TLS (stunnel in front of the broker), and refusals as one clear line.

The embedded broker cannot terminate TLS, so each TLS test runs a broker of its own that advertises the
address of a stunnel proxy in front of it: every connection a client's metadata sends it to is TLS. For
SASL, the broker requires authentication and offers SCRAM but has no users, so every login is refused; a
relay in front of it shows what the clients offered on the wire.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tickcast.broker.embedded import EmbeddedBroker
from tickcast.common.kafka import wait_for_broker
from tickcast.common.processes import free_port
from tickcast.common.refusals import BrokerRefused
from tickcast.common.security import KafkaClientSettings
from tickcast.predictor.broker_login import check_login
from tickcast.producer.synthetic import SyntheticFeed, symbol_names
from tickcast.testing.data import DataSettings
from tickcast.testing.drain import count_answers, read_predictions_to_end, read_to_end, tick_ids
from tickcast.testing.environment import base_env
from tickcast.testing.pipeline import Pipeline, new_unique, wait_for_assignment
from tickcast.testing.relay import RecordingRelay
from tickcast.testing.tls import StunnelMissing, ThrowawayCA, TlsProxy, make_ca, stunnel_binary

pytestmark = pytest.mark.integration

PASSWORD = "pw-that-must-never-be-printed-7f3a"
USER = "tickcast-alice"


@dataclass
class TlsCluster:
    address: str
    """Where clients connect: the TLS proxy (the broker itself only speaks plaintext, on another port)."""
    ca: ThrowawayCA
    wrong_ca: ThrowawayCA
    misnamed: str
    """A second proxy in front of the same broker, whose certificate names another host (``broker.invalid``)."""
    misnamed_ca: ThrowawayCA


def require_stunnel() -> None:
    """Skip without stunnel4, saying why; in CI (``CI=true``), fail instead: CI must run the TLS tests."""
    try:
        stunnel_binary()
    except StunnelMissing as exc:
        if DataSettings().ci:
            pytest.fail(f"{exc}; CI must run the TLS tests (.ci/run installs it)", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsCluster]:
    require_stunnel()
    directory = tmp_path_factory.mktemp("tls")
    ca, wrong_ca = make_ca(directory / "ca"), make_ca(directory / "wrong-ca")
    misnamed_ca = make_ca(directory / "misnamed", names=("broker.invalid",))
    proxy_port = free_port()
    broker = EmbeddedBroker(log_file=directory / "broker.log", advertised=f"127.0.0.1:{proxy_port}")
    with (
        broker,
        TlsProxy(ca.server_pem, broker.bootstrap_servers, port=proxy_port, log_file=directory / "stunnel.log"),
        TlsProxy(misnamed_ca.server_pem, broker.bootstrap_servers, log_file=directory / "misnamed.log") as misnamed,
    ):
        yield TlsCluster(f"127.0.0.1:{proxy_port}", ca, wrong_ca, misnamed.address, misnamed_ca)


@pytest.fixture(scope="module")
def sasl_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingRelay]:
    """A broker that requires SASL (and refuses every login), behind a relay that records what clients send."""
    directory = tmp_path_factory.mktemp("sasl")
    relay_port = free_port()
    broker = EmbeddedBroker(
        log_file=directory / "broker.log", advertised=f"127.0.0.1:{relay_port}", authentication=True
    )
    with broker, RecordingRelay(broker.bootstrap_servers, port=relay_port) as relay:
        yield relay


def tickcast(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickcast", *argv], env={**base_env(), **env}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``tickcast: error:`` line of a failed command; fails on a traceback or any other output."""
    output = f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 1, output
    assert "Traceback" not in done.stderr, output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tickcast: error: "), output
    return lines[0]


def test_the_pipeline_runs_over_tls(tls_cluster: TlsCluster, tmp_path: Path) -> None:
    security = {"security_protocol": "SSL", "ssl_ca_location": str(tls_cluster.ca.ca_file)}
    pipeline = Pipeline(tls_cluster.address, new_unique(), tmp_path / "workers", partitions=2, security=security)
    try:
        pipeline.create_topics()
        workers = pipeline.start_workers(1)
        wait_for_assignment(pipeline, workers)
        publisher = pipeline.publisher()
        clock = iter(range(1_700_000_000_000, 1_700_000_001_000))
        ticks = SyntheticFeed(symbol_names(4), seed=5, clock_ms=lambda: next(clock)).take(200)
        for tick in ticks:
            publisher.publish(tick)
        assert publisher.close() == 0 and publisher.stats.delivered == len(ticks)
        reader = pipeline.reader()
        try:
            got = 0
            for _ in range(300):  # ~0.2 s per poll: at most a minute
                got += sum(1 for r in reader.poll() if r.prediction is not None)
                pipeline.check_workers_alive()
                if got >= len(ticks):
                    break
            assert got >= len(ticks), f"{got} of {len(ticks)} predictions over TLS\n{pipeline.worker_logs()}"
        finally:
            reader.close()
        pipeline.stop()
        sent = tick_ids(pipeline.ticks_topic, read_to_end(pipeline.kafka, pipeline.ticks_topic))
        answers = count_answers(sent, read_predictions_to_end(pipeline.kafka, pipeline.predictions_topic))
        assert answers.exactly_once, answers
    finally:
        pipeline.stop()
    # The proxy speaks only TLS: a plaintext client gets nothing from it, so the run above was all TLS.
    with pytest.raises(Exception, match="did not answer"):
        wait_for_broker(KafkaClientSettings(bootstrap_servers=tls_cluster.address), timeout_s=2)


def test_a_client_with_the_wrong_ca_fails_with_one_line(tls_cluster: TlsCluster) -> None:
    env = {
        "TICKCAST_BOOTSTRAP_SERVERS": tls_cluster.address,
        "TICKCAST_SECURITY_PROTOCOL": "SSL",
        "TICKCAST_SSL_CA_LOCATION": str(tls_cluster.wrong_ca.ca_file),
    }
    line = one_error_line(tickcast("lag", env=env))
    assert f"Kafka at {tls_cluster.address}: TLS handshake failed: " in line
    assert "certificate verify failed" in line
    assert f"TICKCAST_SSL_CA_LOCATION={tls_cluster.wrong_ca.ca_file}" in line
    # The worker's own client (aiokafka, under Faust) says the same.
    wrong = KafkaClientSettings(**{k.removeprefix("TICKCAST_").lower(): v for k, v in env.items()})
    with pytest.raises(BrokerRefused, match=r"TLS handshake failed: .*(certificate|issuer)") as refused:
        check_login(wrong)
    assert str(refused.value).startswith(f"Kafka at {tls_cluster.address}: ")


def test_the_broker_certificate_must_name_the_host_unless_verification_is_off(tls_cluster: TlsCluster) -> None:
    checked = KafkaClientSettings(
        bootstrap_servers=tls_cluster.misnamed, security_protocol="SSL", ssl_ca_location=tls_cluster.misnamed_ca.ca_file
    )
    with pytest.raises(BrokerRefused, match="TLS handshake failed: certificate verify failed"):
        wait_for_broker(checked, timeout_s=10)
    with pytest.raises(BrokerRefused, match=r"TLS handshake failed: .*(match|mismatch)"):
        check_login(checked)
    # With the name check off the same certificate is accepted (its chain is still checked: see the wrong CA test).
    unchecked = checked.model_copy(update={"ssl_endpoint_identification_algorithm": "none"})
    check_login(unchecked)
    assert wait_for_broker(unchecked, timeout_s=10) is not None


def sasl_env(relay: RecordingRelay) -> dict[str, str]:
    return {
        "TICKCAST_BOOTSTRAP_SERVERS": relay.address,
        "TICKCAST_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "TICKCAST_SASL_MECHANISM": "SCRAM-SHA-256",
        "TICKCAST_SASL_USERNAME": USER,
        "TICKCAST_SASL_PASSWORD": PASSWORD,
    }


def assert_refused_login(done: subprocess.CompletedProcess[str], relay: RecordingRelay) -> None:
    line = one_error_line(done)
    assert f"Kafka at {relay.address}: authentication failed for user {USER} (SCRAM-SHA-256)" in line, line
    assert PASSWORD not in done.stdout + done.stderr


@pytest.mark.parametrize("argv", [("produce", "synthetic", "--count", "5"), ("lag",), ("worker",)], ids=" ".join)
def test_a_refused_scram_login_is_one_line_naming_the_user_never_the_password(
    argv: tuple[str, ...], sasl_relay: RecordingRelay, tmp_path: Path
) -> None:
    before = len(sasl_relay.sent)
    done = tickcast(*argv, env={**sasl_env(sasl_relay), "TICKCAST_DATA_DIR": str(tmp_path)})
    assert_refused_login(done, sasl_relay)
    on_the_wire = sasl_relay.sent[before:]
    assert b"SCRAM-SHA-256" in on_the_wire, "the client did not ask for SCRAM-SHA-256"
    assert f"n={USER},r=".encode() in on_the_wire, "the client did not offer the configured user"
    assert PASSWORD.encode() not in on_the_wire, "SCRAM must never send the password"


def test_the_workers_faust_client_attempts_scram_and_reports_the_refusal(sasl_relay: RecordingRelay) -> None:
    # The worker logs in with aiokafka too (Faust's client) before Faust starts; its refusal reads the same.
    settings = KafkaClientSettings(**{k.removeprefix("TICKCAST_").lower(): v for k, v in sasl_env(sasl_relay).items()})
    before = len(sasl_relay.sent)
    with pytest.raises(BrokerRefused) as refused:
        check_login(settings)
    assert str(refused.value).startswith(
        f"Kafka at {sasl_relay.address}: authentication failed for user {USER} (SCRAM-SHA-256): "
    )
    assert PASSWORD not in str(refused.value)
    on_the_wire = sasl_relay.sent[before:]
    assert b"SCRAM-SHA-256" in on_the_wire and f"n={USER},r=".encode() in on_the_wire
