"""Settings of the predictor worker (``TICKCAST_*``)."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from tickcast.common.settings import CommonSettings
from tickcast.predictor.delayed_labels import DEFAULT_CAPACITY
from tickcast.predictor.horizons import DEFAULT_HORIZONS, Horizon, parse_horizons
from tickcast.predictor.models import DEFAULT_MODEL, MODELS
from tickcast.predictor.selection.drift import DriftPolicy
from tickcast.predictor.selection.rule import PromotionPolicy
from tickcast.predictor.snapshot_keys import MIN_KEY_BYTES, key_problem, split_keys

#: Shorter bearer tokens are refused: they could be guessed.
MIN_TOKEN_CHARS = 16

#: librdkafka's integer properties and gc.set_threshold take a C int: a larger value fails the worker at start.
C_INT_MAX = 2**31 - 1


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class PredictorSettings(CommonSettings):
    """Worker tuning; Kafka and topic fields come from :class:`CommonSettings`.

    >>> s = PredictorSettings(bootstrap_servers="k:9092", model="pa")
    >>> s.group_id, s.model
    ('tickcast-predictor', 'pa')
    """

    group_id: str = Field(
        "tickcast-predictor", pattern=r"^[A-Za-z0-9._-]{1,200}$", description="Consumer group (Faust app id)."
    )
    model: str = Field(DEFAULT_MODEL, description=f"Model from the registry: {', '.join(MODELS)}.")
    worker_id: str = Field(default_factory=_default_worker_id, description="Name of this worker in lineage and logs.")
    challengers: str = Field(
        "",
        description="Comma-separated registry models that learn in the champion's shadow per symbol and replace it "
        "when the promotion rule says so; empty = the configured model serves alone.",
    )
    challenger_score_fraction: float = Field(
        1.0, gt=0, le=1, description="Share of ticks on which challengers forecast and are scored (all learn)."
    )
    promotion_min_samples: int = Field(300, ge=2, description="Scored labels a challenger needs before promotion.")
    promotion_level: float = Field(
        0.01, gt=0, lt=0.5, description="One-sided level of the Diebold-Mariano test (split among challengers)."
    )
    promotion_min_skill_margin: float = Field(
        0.01, ge=0, lt=1, description="Least relative drop in squared error (1 - mse_new / mse_old) to promote."
    )
    promotion_cooldown: int = Field(500, ge=0, description="Labels after a change of champion with no other change.")
    promotion_warm_up_first_look: int = Field(
        PromotionPolicy().warm_up_first_look,
        ge=0,
        description="A symbol's labels served as warming up before its first warm-up look (0: no warm-up).",
    )
    promotion_warm_up_labels: int = Field(
        PromotionPolicy().warm_up_labels,
        ge=0,
        description="Labels during which the warm-up serves the model with the lowest recent error at doubling looks.",
    )
    drift_detector: Literal["adwin", "page-hinkley", "off"] = Field(
        "page-hinkley", description="Drift detector on the champion's absolute residuals, per symbol."
    )
    drift_adwin_delta: float = Field(
        DriftPolicy().adwin_delta, gt=0, lt=1, description="ADWIN's confidence parameter (lower: fewer alarms)."
    )
    drift_ph_threshold: float = Field(
        DriftPolicy().ph_threshold,
        gt=0,
        description="Page-Hinkley's threshold, bps of cumulative excess error (see tickcast evaluate --drift).",
    )
    drift_fresh_challenger: bool = Field(
        True, description="On drift, start a fresh model of the champion's recipe as a challenger."
    )
    web_host: str = Field(
        "127.0.0.1",
        description="Interface the worker's HTTP server listens on (health, stats, metrics, latest predictions); "
        "loopback by default, 0.0.0.0 in containers (set by the image).",
    )
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the worker's HTTP server.")
    web_token: SecretStr | None = Field(
        None,
        description="Bearer token /predictions/{symbol} requires (at least 16 characters); unset = open. "
        "Health, stats and metrics stay open.",
    )
    session_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Group session timeout; a dead worker's partitions move after this long.",
    )
    fetch_max_wait_ms: int = Field(
        20, ge=1, le=5000, description="Longest a fetch waits for data; bounds latency on brokers that hold fetches."
    )
    max_poll_records: int = Field(
        1_000,
        ge=1,
        le=1_000_000,
        description="Records one poll hands to the batch loop at most (aiokafka's max_poll_records): the loop "
        "serves health checks, timers and rebalances between batches, so this bounds how long they wait.",
    )
    librdkafka_fetch: bool = Field(
        True,
        description="Fetch the ticks topic with a librdkafka consumer assigned the partitions Faust's group "
        "gave this worker (Faust and aiokafka keep the group, rebalances and commits); off: aiokafka fetches it.",
    )
    linger_ms: int = Field(5, ge=0, le=1000, description="Producer batching delay for predictions.")
    output_message_timeout_ms: int = Field(
        300_000,
        ge=1,
        le=C_INT_MAX,
        description="How long librdkafka retries an output before refusing it (its message.timeout.ms); "
        "a partition with a refused output is re-read from its last checkpoint.",
    )
    output_idempotence: bool = Field(
        True,
        description="Idempotent outputs (no duplicate or reordered retries); off only for brokers without "
        "support for it (Kafka before 0.11, or without the IDEMPOTENT_WRITE permission before 2.8).",
    )
    output_queue_max_messages: int = Field(
        100_000,
        ge=1,
        le=C_INT_MAX,
        description="Outputs librdkafka may hold unsent (queue.buffering.max.messages); "
        "when full, the worker stops fetching until it drains.",
    )
    output_batch_max_messages: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="Outputs in one produce batch per partition at most (librdkafka's batch.num.messages); "
        "with max.in.flight requests, it bounds how many outputs an unanswered broker can hold.",
    )
    max_record_bytes: int = Field(64 * 1024, ge=64, description="Ticks larger than this go to the dead-letter topic.")
    max_future_ms: int = Field(
        5 * 60 * 1000, ge=0, description="Reject ticks whose event time is this far ahead of the clock."
    )

    snapshot_key: SecretStr | None = Field(
        None,
        description=f"HMAC key that signs state snapshots, at least {MIN_KEY_BYTES} bytes and not a placeholder; "
        "unset = no snapshots, state restarts on rebalance.",
    )
    snapshot_previous_keys: SecretStr | None = Field(
        None,
        description="Comma-separated keys that still verify snapshots (never sign them): older keys while "
        "rotating, or the next key before it becomes TICKCAST_SNAPSHOT_KEY.",
    )
    snapshot_every_ticks: int = Field(1000, ge=1, description="Checkpoint a partition after this many ticks...")
    snapshot_every_s: float = Field(5.0, gt=0, description="...or after this many seconds, whichever is first.")
    max_symbols: int = Field(
        20_000,
        ge=1,
        description="Most symbols one worker keeps state for (a busy one ~17-23 KB at default settings, ~23-30 KB "
        "restored from a snapshot); past it the least recently seen are evicted after a final snapshot.",
    )
    symbol_ttl_s: float = Field(
        604_800.0,
        gt=0,
        description="An evicted symbol idle for longer than this (the worker's clock since a worker last predicted "
        "it) is forgotten for good (tombstone). A week: past a weekend and a holiday closure, so a market's symbols "
        "evicted before it reopens keep their snapshots.",
    )
    memory_release_every_s: float = Field(
        15.0,
        gt=0,
        description="Return the allocator's free pages to the OS this often (glibc malloc_trim, off the event loop), "
        "so RSS follows the state held, not past peaks.",
    )
    malloc_arenas: int = Field(
        2,
        ge=0,
        le=1024,
        description="Most glibc malloc arenas the worker uses (0 = glibc's default, 8 per core); fewer arenas keep "
        "memory freed after restores from piling up in RSS.",
    )
    gc_gen0_threshold: int = Field(
        20_000,
        ge=0,
        le=C_INT_MAX,
        description="Allocations between the garbage collector's young-generation runs once started (CPython: 700); "
        "0 keeps CPython's defaults. Fewer runs cost less CPU per tick (see tickcast.predictor.gc_tuning).",
    )
    horizons: str = Field(
        DEFAULT_HORIZONS,
        description="Forecast horizons, comma-separated: event time ('500ms', '10s', '1m') or ticks ('5t'); each "
        "tick gets one forecast per horizon, the shortest in the prediction's v1 fields.",
    )
    interval_coverage: float = Field(
        0.9, ge=0.0, lt=1.0, description="Nominal coverage of each forecast's interval; 0 serves no intervals."
    )
    gap_s: float = Field(
        300.0,
        gt=0,
        description="A symbol silent for longer than this (halt, night) restarts its short-horizon features, "
        "drops its pending labels and flags the predictions after it 'after_gap'.",
    )
    label_capacity: int = Field(
        DEFAULT_CAPACITY, ge=1, le=1024, description="Pending labels kept per symbol and time horizon (see README)."
    )
    snapshots_topic: str | None = Field(None, description="Topic of state snapshots; unset = '<group_id>-snapshots'.")
    data_dir: Path = Field(
        Path(tempfile.gettempdir()) / "tickcast", description="Scratch directory Faust requires (nothing durable)."
    )

    @property
    def snapshots_topic_name(self) -> str:
        """Where this group's snapshots live.

        >>> PredictorSettings(bootstrap_servers="k:1", group_id="g").snapshots_topic_name
        'g-snapshots'
        """
        return self.snapshots_topic or f"{self.group_id}-snapshots"

    @field_validator("snapshot_key")
    @classmethod
    def _key_is_not_guessable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        problem = key_problem(value.get_secret_value())
        if problem is not None:
            raise ValueError(f"the snapshot key {problem}")
        return value

    @field_validator("snapshot_previous_keys")
    @classmethod
    def _previous_keys_are_not_guessable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        for position, key in enumerate(split_keys(value.get_secret_value()), start=1):
            problem = key_problem(key)
            if problem is not None:
                raise ValueError(f"previous key #{position} {problem}")
        return value

    @property
    def verifying_keys(self) -> list[bytes]:
        """The keys a snapshot's signature may be made with: the current one first, then the previous ones.

        >>> current, old = "a" * 32, "b" * 40
        >>> s = PredictorSettings(bootstrap_servers="k:1", snapshot_key=current, snapshot_previous_keys=f"{old},")
        >>> [len(key) for key in s.verifying_keys]
        [32, 40]
        """
        if self.snapshot_key is None:
            return []
        previous = split_keys(self.snapshot_previous_keys.get_secret_value()) if self.snapshot_previous_keys else []
        return [key.encode("utf-8") for key in [self.snapshot_key.get_secret_value(), *previous]]

    @field_validator("web_token")
    @classmethod
    def _token_is_not_guessable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"a bearer token must be at least {MIN_TOKEN_CHARS} characters")
        return value

    @property
    def horizon_list(self) -> tuple[Horizon, ...]:
        """The parsed horizons, shortest first.

        >>> [h.label for h in PredictorSettings(bootstrap_servers="k:1").horizon_list]
        ['1s', '10s', '60s']
        """
        return parse_horizons(self.horizons)

    @field_validator("horizons")
    @classmethod
    def _horizons_parse(cls, value: str) -> str:
        parse_horizons(value)  # BadHorizon is a ValueError: pydantic reports it with the setting's name
        return value

    @property
    def challenger_names(self) -> tuple[str, ...]:
        """The configured challengers, without the champion itself.

        >>> PredictorSettings(bootstrap_servers="k:1", challengers="pa, linear,ew-mean").challenger_names
        ('pa', 'ew-mean')
        """
        return tuple(n for n in (part.strip() for part in self.challengers.split(",")) if n and n != self.model)

    @field_validator("challengers")
    @classmethod
    def _challengers_are_registered(cls, value: str) -> str:
        unknown = [n for n in (part.strip() for part in value.split(",")) if n and n not in MODELS]
        if unknown:
            raise ValueError(f"unknown challengers {unknown}; choose among: {', '.join(MODELS)}")
        return value

    @field_validator("model")
    @classmethod
    def _model_is_registered(cls, value: str) -> str:
        if value not in MODELS:
            raise ValueError(f"unknown model {value!r}; choose one of: {', '.join(MODELS)}")
        return value
