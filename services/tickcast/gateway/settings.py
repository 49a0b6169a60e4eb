"""Settings of the gateway (``TICKCAST_GATEWAY_*`` plus the shared Kafka and topic fields)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from tickcast.common.settings import CommonSettings
from tickcast.gateway.timeslice import MAX_SLICE_US, MIN_SLICE_US


class GatewaySettings(CommonSettings):
    """Where the gateway listens and how much it keeps per symbol, partition and client.

    >>> s = GatewaySettings(bootstrap_servers="k:9092")
    >>> s.gateway_port, s.gateway_max_symbols, s.gateway_client_buffer
    (8080, 100000, 1024)
    """

    gateway_host: str = Field("127.0.0.1", description="Interface the HTTP server binds to (0.0.0.0 in containers).")
    gateway_port: int = Field(8080, ge=0, le=65535, description="HTTP port; 0 picks a free one.")
    gateway_max_symbols: int = Field(
        100_000, ge=1, le=10_000_000, description="Symbols kept in memory; the least recently updated go first."
    )
    gateway_ring_size: int = Field(
        5_000,
        ge=1,
        le=1_000_000,
        description="Recent predictions kept per partition, so a reconnecting SSE client resumes without a gap.",
    )
    gateway_warm_window: int = Field(
        5_000,
        ge=0,
        le=10_000_000,
        description="Cold start reads at most this many records back from each partition's end.",
    )
    gateway_client_buffer: int = Field(
        1_024, ge=1, le=1_000_000, description="Events queued per SSE client; a client further behind is dropped."
    )
    gateway_max_clients: int = Field(10_000, ge=1, le=1_000_000, description="Concurrent SSE clients accepted.")
    gateway_max_query_symbols: int = Field(
        200, ge=1, le=10_000, description="Symbols one request may name (?symbols=A,B,...)."
    )
    gateway_keepalive_s: float = Field(
        15.0,
        gt=0,
        le=300,
        description="An SSE comment line is sent to every client this often (proxies close silent streams).",
    )
    gateway_sched_slice_us: int = Field(
        0,
        ge=0,
        le=MAX_SLICE_US,
        description="EEVDF time slice (us, 100-100000) the event loop asks Linux >= 6.12 for, so it runs sooner "
        "when a request wakes it on a busy machine; 0 leaves the kernel's default. Not a larger CPU share.",
    )
    gateway_gc_freeze: bool = Field(
        True, description="Once started, take the start-up objects out of the garbage collector's scans (gc.freeze)."
    )
    gateway_gc_threshold0: int = Field(
        5_000,
        ge=0,
        le=1_000_000,
        description="Allocations between two young-generation collections (Python's default: 700; 0 keeps it). "
        "Fewer collections are fewer pauses of the event loop.",
    )
    gateway_worker_stats_urls: str = Field(
        "",
        max_length=20_000,
        pattern=r"^(https?://[^\s,]+(,https?://[^\s,]+)*)?$",  # bounded by max_length
        description="Comma-separated URLs of the workers' /stats, polled for lag and dead letters (none: not shown).",
    )
    gateway_worker_stats_dns: str = Field(
        "",
        max_length=300,
        pattern=r"^([A-Za-z0-9.-]+:[0-9]{1,5})?$",
        description="host:port whose DNS records are the workers (a headless Service, or a compose service name); "
        "resolved before every poll, so scaled workers appear and leave on their own. Added to the static URLs.",
    )
    gateway_worker_stats_interval_s: float = Field(
        2.0, ge=0.1, le=300, description="Seconds between two polls of the workers' /stats."
    )

    gateway_clients_file: Path | None = Field(
        None,
        description="File of the clients allowed to read predictions (a Kubernetes Secret volume): one 'NAME "
        "SHA256-HEX-OF-TOKEN' per line (`tickcast gateway-client NAME` makes one). Every /v1 route then wants "
        "'Authorization: Bearer <token>'; re-read when it changes, no restart. Unset: no authentication.",
    )

    gateway_tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate chain (the server's certificate first) of the gateway's HTTPS, with "
        "TICKCAST_GATEWAY_TLS_KEY_FILE; the port then speaks HTTPS only. Reloaded when it changes. Unset: HTTP.",
    )
    gateway_tls_key_file: Path | None = Field(
        None, description="PEM private key of TICKCAST_GATEWAY_TLS_CERT_FILE (both or neither)."
    )
    gateway_tls_key_password_file: Path | None = Field(
        None, description="File holding the password of an encrypted TICKCAST_GATEWAY_TLS_KEY_FILE."
    )
    gateway_tls_min_version: Literal["1.2", "1.3"] = Field(
        "1.2", description="Oldest TLS version the gateway's HTTPS accepts."
    )

    @field_validator("gateway_sched_slice_us")
    @classmethod
    def _slice_the_kernel_takes(cls, value: int) -> int:
        """0 or 100-100000 us: anything between would stop the gateway at start, after the broker wait.

        >>> GatewaySettings(gateway_sched_slice_us=50)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for GatewaySettings
        gateway_sched_slice_us
          Value error, a time slice is 0 (the kernel's) or 100-100000 us, not 50 ...
        """
        if 0 < value < MIN_SLICE_US:
            raise ValueError(f"a time slice is 0 (the kernel's) or {MIN_SLICE_US}-{MAX_SLICE_US} us, not {value}")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> GatewaySettings:
        cert, key = self.gateway_tls_cert_file, self.gateway_tls_key_file
        if (cert is None) != (key is None):
            given, missing = ("CERT", "KEY") if key is None else ("KEY", "CERT")
            raise ValueError(
                f"TICKCAST_GATEWAY_TLS_{given}_FILE is set without TICKCAST_GATEWAY_TLS_{missing}_FILE: "
                "HTTPS needs both the certificate chain and its key"
            )
        if self.gateway_tls_key_password_file is not None and key is None:
            raise ValueError("TICKCAST_GATEWAY_TLS_KEY_PASSWORD_FILE is set without TICKCAST_GATEWAY_TLS_KEY_FILE")
        return self

    @property
    def gateway_scheme(self) -> str:
        """``https`` when the gateway serves TLS, else ``http``.

        >>> GatewaySettings(gateway_tls_cert_file="tls.crt", gateway_tls_key_file="tls.key").gateway_scheme
        'https'
        >>> GatewaySettings().gateway_scheme
        'http'
        """
        return "http" if self.gateway_tls_cert_file is None else "https"

    def worker_stats_urls(self) -> list[str]:
        """The URLs of ``gateway_worker_stats_urls``, in order.

        >>> GatewaySettings(gateway_worker_stats_urls="http://w1:6066/stats,http://w2:6066/stats").worker_stats_urls()
        ['http://w1:6066/stats', 'http://w2:6066/stats']
        >>> GatewaySettings().worker_stats_urls()
        []
        """
        return [url for url in self.gateway_worker_stats_urls.split(",") if url]
