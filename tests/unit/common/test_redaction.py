"""A schema registry URL with credentials never reaches a log line, an error message or a dead-letter header."""

from __future__ import annotations

import logging

import pytest

from tests.unit.common.test_confluent_registry import FakeRegistry, registry  # noqa: F401  (fixture)
from tickcast.common.contracts import AvroCodec, frame, load_schema
from tickcast.common.contracts.base import TICK_SCHEMA_FILE, SchemaError
from tickcast.common.contracts.confluent_registry import RegistrySchemaStore
from tickcast.common.errors import Rejected
from tickcast.common.logging import configure_logging
from tickcast.common.records import Lineage
from tickcast.predictor.runtime import dead_letter_headers

PASSWORD = "pa55-w0rd-in-url"
USER = "svc-tickcast-user"


def with_credentials(url: str) -> str:
    return url.replace("://", f"://{USER}:{PASSWORD}@", 1)


def assert_clean(text: str) -> None:
    assert PASSWORD not in text and USER not in text, text


def test_registry_errors_and_dead_letters_name_the_registry_without_its_credentials(registry: FakeRegistry) -> None:  # noqa: F811
    store = RegistrySchemaStore(with_credentials(registry.url), request_timeout_s=0.3)
    codec = AvroCodec(store, "ticks-value", load_schema(TICK_SCHEMA_FILE))
    good = codec.encode({"symbol": "SPY", "price": 1.0, "size": 1.0, "event_time": 0})
    registry.hang.set()
    with pytest.raises(Rejected) as caught:
        codec.decode(frame(77, good[5:]))
    message = caught.value.message
    assert "did not answer" in message and "127.0.0.1" in message, message
    assert_clean(message)
    headers = dead_letter_headers(caught.value.reason, message, Lineage("ticks", 0, 1, 2), "w", 3)
    for name, value in headers:
        assert_clean(f"{name}={value.decode()}")
    with pytest.raises(SchemaError) as again:  # the remembered failure, raised without asking again
        store.lookup(77)
    assert_clean(str(again.value))


def test_a_registry_that_refuses_registration_is_named_without_credentials() -> None:
    # Nothing listens on port 9 of loopback (discard): the client's connection error quotes the URL.
    store = RegistrySchemaStore(with_credentials("http://127.0.0.1:9"), request_timeout_s=0.3)
    with pytest.raises(SchemaError) as caught:
        store.register("ticks-value", load_schema(TICK_SCHEMA_FILE))
    assert_clean(str(caught.value))


def test_log_lines_and_tracebacks_mask_url_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    log = configure_logging("redaction-test", "INFO", "json")
    url = with_credentials("https://sr.example:8081")
    log.info("registry_configured", url=url, nested={"urls": [url]})
    logging.getLogger("faust.test").warning("connecting to %s", url)  # a library's stdlib record
    try:
        raise ConnectionError(f"cannot reach {url}/schemas/ids/5")
    except ConnectionError:
        log.exception("lookup_failed")
    err = capsys.readouterr().err
    assert err.count("***@sr.example:8081") >= 4, err
    assert_clean(err)


@pytest.mark.parametrize("password", ["p@ss-w0rd", "a@b@c-secret"])
def test_a_password_with_an_at_sign_is_masked_whole(password: str) -> None:
    # urllib (and so the Schema Registry client) splits userinfo from host at the LAST '@', so such a URL works.
    from tickcast.common.redaction import redact_text

    url = f"https://{USER}:{password}@sr.example:8081/subjects"
    masked = redact_text(f"schema registry {url} did not answer")
    assert masked == "schema registry https://***@sr.example:8081/subjects did not answer", masked


@pytest.mark.parametrize(
    "text",
    [
        "https://sr.example:8081 refused user@example.com",  # an '@' after the URL, past a space, is not its userinfo
        "reading file:///data/ticks@2024.csv",  # no authority at all
    ],
)
def test_only_userinfo_is_masked(text: str) -> None:
    from tickcast.common.redaction import redact_text

    assert redact_text(text) == text


@pytest.mark.parametrize("scheme", ["https", "HTTPS", "sasl+ssl", "x-registry.v2"])
def test_the_userinfo_of_any_scheme_is_masked(scheme: str) -> None:
    from tickcast.common.redaction import redact_text

    masked = redact_text(f"connect {scheme}://{USER}:{PASSWORD}@host:1 and http://{USER}@other failed")
    assert masked == f"connect {scheme}://***@host:1 and http://***@other failed", masked


def test_exceptions_and_tuples_in_a_log_event_are_masked() -> None:
    from tickcast.common.redaction import redact_event

    url = with_credentials("https://sr.example:8081")
    event = redact_event(None, "error", {"event": "x", "error": ConnectionError(f"cannot reach {url}"), "urls": (url,)})
    assert_clean(repr(event))
    assert event["urls"] == ("https://***@sr.example:8081",), f"a tuple of URLs came out as {event['urls']!r}"


@pytest.mark.parametrize("separator", ["/", "?", "#"])
def test_a_password_with_an_unencoded_path_or_query_character_is_masked_whole(separator: str) -> None:
    # urllib ends the authority at the first '/', '?' or '#': such a URL does not work, and the client's error
    # (and ours, which names the URL) is exactly the message that must not carry the password.
    from tickcast.common.redaction import redact_text

    password = f"k3y{separator}{PASSWORD}"
    masked = redact_text(f"schema registry https://{USER}:{password}@sr.example:8081 did not answer: Invalid port")
    assert masked == "schema registry https://***@sr.example:8081 did not answer: Invalid port", masked


@pytest.mark.parametrize("separator", ["/", "?", "#", ","])
def test_a_registry_url_whose_password_breaks_it_is_refused_without_quoting_any_of_the_password(
    separator: str,
) -> None:
    # urllib ends the host part at '/', '?' or '#', and the client splits its url at ',': the client's own
    # errors then quote a piece of the password ("Invalid port: 'k3y'", "Invalid url pa55...@127.0.0.1:9").
    password = f"k3y{separator}{PASSWORD}"
    with pytest.raises(SchemaError) as caught:
        store = RegistrySchemaStore(f"http://{USER}:{password}@127.0.0.1:9", request_timeout_s=0.3)
        store.register("ticks-value", load_schema(TICK_SCHEMA_FILE))
    message = str(caught.value)
    assert "k3y" not in message, message
    assert_clean(message)
    assert "percent-encode" in message, f"the error does not say how to fix the URL: {message}"
