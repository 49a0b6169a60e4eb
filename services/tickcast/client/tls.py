"""TLS to a gateway: what a failed handshake means, said once with the setting that fixes it, not retried."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
NAME_MISMATCH = (62, 64)


class GatewayTlsError(ConnectionError):
    """The TLS handshake with a gateway failed: its certificate is not trusted (or names another host), or it
    does not speak HTTPS (or an ``http://`` URL reached one that speaks only HTTPS); or the CA file to trust
    cannot be used. Raised at once, not retried: another attempt
    would fail the same way."""


def tls_failure(exc: BaseException, url: str, ca_file: Path | None) -> GatewayTlsError | None:
    """The :class:`GatewayTlsError` behind an HTTP client's error (an ``ssl.SSLError`` in its causes), or None.

    >>> cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    >>> cause.verify_message = "unable to get local issuer certificate"
    >>> try:
    ...     raise OSError("connect failed") from cause
    ... except OSError as exc:
    ...     print(tls_failure(exc, "https://gw:8443", None))  # doctest: +NORMALIZE_WHITESPACE
    TLS to https://gw:8443 failed: certificate verify failed: unable to get local issuer certificate (trusted CAs:
    the system's; trust the gateway's CA with ca_file= or TICKCAST_CLIENT_GATEWAY_CA_FILE)
    >>> tls_failure(OSError("refused"), "https://gw:8443", None) is None
    True
    >>> try:
    ...     raise OSError("connect failed") from ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    ... except OSError as exc:
    ...     print(tls_failure(exc, "https://gw:8443", None))
    None
    """
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    if isinstance(cause, ssl.SSLEOFError) or getattr(cause, "reason", None) == "UNEXPECTED_EOF_WHILE_READING":
        # The peer hung up mid-handshake (a gateway shutting down, a balancer without a backend): no sign of a
        # certificate or protocol mismatch, so it is retried like any dropped connection.
        return None
    if isinstance(cause, ssl.SSLCertVerificationError):
        trusted = str(ca_file) if ca_file is not None else "the system's"
        why = f"certificate verify failed: {cause.verify_message}"
        hint = f"trusted CAs: {trusted}; trust the gateway's CA with ca_file= or TICKCAST_CLIENT_GATEWAY_CA_FILE"
        if getattr(cause, "verify_code", None) in NAME_MISMATCH:
            # Another CA would not help here: the chain verified, the name did not.
            hint = "the certificate must name the host in the URL; the CA itself was trusted"
    else:
        why = cause.reason or str(cause)
        hint = "does the gateway serve HTTPS on that port? An http:// URL for a plain-HTTP gateway"
    return GatewayTlsError(f"TLS to {url} failed: {why} ({hint})")


async def answers_tls(url: str, timeout_s: float = 5.0) -> bool:
    """Whether the host and port of an ``http://`` URL complete a TLS handshake: an HTTPS-only gateway.

    Asked only after a connection closed without an answer, which is what such a gateway does with plain HTTP;
    the certificate is not checked (the answer is only "use https://").

    >>> asyncio.run(answers_tls("https://127.0.0.1:1")), asyncio.run(answers_tls("http://127.0.0.1:1"))
    (False, False)
    """
    import httpx

    parsed = httpx.URL(url)
    if parsed.scheme != "http":
        return False
    probe = ssl.create_default_context()
    probe.check_hostname, probe.verify_mode = False, ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parsed.host, parsed.port or 80, ssl=probe), timeout_s
        )
    except OSError:  # TimeoutError is one
        return False
    writer.close()
    return True


def https_only(url: str) -> GatewayTlsError:
    """The error for an ``http://`` URL whose gateway speaks only HTTPS.

    >>> print(https_only("http://gw:8443/"))
    http://gw:8443 closed the connection without an answer and speaks TLS on that port: the gateway serves HTTPS \
only; use https://gw:8443
    """
    url = url.rstrip("/")
    return GatewayTlsError(
        f"{url} closed the connection without an answer and speaks TLS on that port: the gateway serves HTTPS "
        f"only; use https://{url.removeprefix('http://')}"
    )


def ca_setting(ca_file: Path) -> str:
    return f"CA file {ca_file} (ca_file= or TICKCAST_CLIENT_GATEWAY_CA_FILE)"
