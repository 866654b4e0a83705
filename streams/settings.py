"""One typed settings object, read from ``PROFITSTREAM_*`` environment variables and CLI flags."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ProcessingGuarantee = Literal["at_least_once", "exactly_once"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class TopicNames(BaseModel):
    """Names of the topics the product reads and writes (DESIGN.md defaults)."""

    activity: str = "client-activity"
    billing: str = "billing"
    predictions: str = "profitability-predictions"
    shadow: str = "profitability-predictions-shadow"
    control: str = "profitability-control"
    audit: str = "profitability-audit"
    monitoring: str = "profitability-monitoring"
    dlq: str = "profitability-dlq"


class KafkaSecurity(BaseModel):
    """SASL/TLS options, passed through to aiokafka."""

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for SSL / SASL_SSL, ``None`` for plaintext protocols."""
        if not self.protocol.endswith("SSL"):
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        if self.ssl_certfile:
            context.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
            )
        return context


def parse_broker_list(value: str) -> list[str]:
    """Parse ``kafka://h1:p1,h2:p2`` into ``["h1:p1", "h2:p2"]`` or raise ``ValueError``."""
    servers = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        parts = urlsplit(item if "://" in item else f"kafka://{item}")
        if parts.scheme != "kafka":
            raise ValueError(f"broker {item!r} must use the kafka:// scheme")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"broker {item!r} has an invalid port") from exc
        if not parts.hostname or port is None or parts.path not in ("", "/"):
            raise ValueError(f"broker {item!r} must look like kafka://host:port")
        servers.append(f"{parts.hostname}:{port}")
    if not servers:
        raise ValueError("broker list is empty")
    return servers


def mask_url_password(url: str) -> str:
    """Hide the password of a ``scheme://user:password@host`` URL."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class Settings(BaseSettings):
    """Everything a worker or the CLI needs to know, from ``PROFITSTREAM_*`` variables.

    Nested fields use ``__``: ``PROFITSTREAM_TOPICS__ACTIVITY``,
    ``PROFITSTREAM_SECURITY__SASL_PASSWORD``. ``broker`` and ``redis_url`` may stay
    unset while the embedded stack runs: they are then read from its state file.
    """

    model_config = SettingsConfigDict(
        env_prefix="PROFITSTREAM_", env_nested_delimiter="__", extra="ignore"
    )

    app_id: str = "profitstream"
    broker: str | None = Field(default=None, description="kafka://host:port[,kafka://...]")
    redis_url: str | None = Field(default=None, description="redis://[:password@]host:port/db")
    data_dir: Path = Path(".profitstream")
    model_registry: str | None = Field(
        default=None,
        description="a directory or mlflow+sqlite:///path.db (default DATA_DIR/registry)",
    )
    model: str | None = Field(
        default=None,
        description="the model the worker and `score` use: NAME (its highest version), "
        "NAME@X.Y.Z or NAME@ALIAS; unset: the worker keeps features and emits no predictions",
    )
    api_token: SecretStr | None = Field(
        default=None, description="bearer token of the web endpoints (not /health /ready /metrics)"
    )
    prediction_delta: float = Field(default=0.02, ge=0, le=10)
    prediction_heartbeat_s: float = Field(default=0.0, ge=0)
    prediction_drivers: int = Field(default=5, ge=0, le=50)
    control_keys: Path | None = Field(
        default=None,
        description="JSON file of the principals who sign control commands (role, key); "
        "unset: a worker accepts no command",
    )
    control_principal: str | None = Field(
        default=None, description="who the CLI signs control commands as (an entry of the keys)"
    )
    control_monitor_principal: str | None = Field(
        default=None,
        description="who the experiment monitor signs its promote/stop/ramp commands as "
        "(an operator or admin of the keys); unset: results are published, nothing is acted on",
    )
    monitor_interval_s: float = Field(
        default=5.0, gt=0, le=3600,
        description="how often arm health is published and the experiment judged",
    )  # fmt: skip
    accuracy_window_outcomes: int = Field(
        default=500, ge=1, le=100_000,
        description="N: realised accuracy and interval coverage are over the last N outcomes "
        "of each model version and arm; coverage outside the level ± 5 points is broken",
    )  # fmt: skip
    accuracy_estimate_span_s: float = Field(
        default=30 * 86_400.0, gt=0,
        description="event-time span of the label-free error estimate: each client scored "
        "within it counts once, with its latest estimate",
    )  # fmt: skip
    # Drift of the scored rows against each model's training data (``models_store.monitoring``).
    drift_monitoring: bool = Field(
        default=True, description="count scored rows for drift and publish `drift` records"
    )
    drift_window_days: int = Field(
        default=7, ge=1, le=90, description="the sliding event-time window, in days"
    )
    drift_interval_s: float = Field(
        default=60.0, gt=0, le=3600, description="how often drift records and gauges are published"
    )
    drift_min_rows: int = Field(
        default=500, ge=1, description="scored rows a window needs before it is given figures"
    )
    drift_top_features: int = Field(
        default=5, ge=1, le=100, description="features per record and gauge, largest PSI first"
    )
    control_max_age_s: float = Field(default=300.0, gt=0)
    control_max_skew_s: float = Field(default=60.0, ge=0)
    topics: TopicNames = TopicNames()
    topic_partitions: int = Field(default=8, ge=1, le=1024)
    # Topic settings: applied when the worker creates a topic, checked on existing ones.
    topic_replication_factor: int = Field(default=1, ge=1, le=32)
    topic_min_insync_replicas: int | None = Field(
        default=None, ge=1, le=32,
        description="min.insync.replicas of the topics the worker creates (unset: broker default)",
    )  # fmt: skip
    topic_retention_ms: int = Field(
        default=7 * 86_400_000, ge=-1,
        description="retention.ms of the input, output, monitoring and DLQ topics (-1: forever)",
    )  # fmt: skip
    audit_retention_ms: int = Field(
        default=-1, ge=-1, description="retention.ms of the audit topic (-1: forever)"
    )
    predictions_compacted: bool = Field(
        default=True,
        description="the predictions topic the worker creates is compacted (each client's "
        "latest prediction kept, no time retention; erasure tombstones remove a client); "
        "false: cleanup.policy=delete with topic_retention_ms",
    )
    # Outages: how long a failing Redis or broker call waits before its next try, at most.
    retry_backoff_max_s: float = Field(default=5.0, gt=0, le=300)
    # How often the worker checks that Redis still holds its mirror (rebuilt when flushed).
    mirror_check_interval_s: float = Field(default=5.0, gt=0, le=3600)
    processing_guarantee: ProcessingGuarantee = "at_least_once"
    security: KafkaSecurity = KafkaSecurity()
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    # Tansu waits half the session timeout before it completes the first join of a
    # group, so a shorter timeout than Faust's 60 s default makes start-up quick.
    broker_session_timeout_s: float = Field(default=10.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Feature pipeline.
    allowed_lateness_s: float = Field(default=7 * 86_400, ge=0)
    max_future_s: float = Field(default=86_400, ge=0)
    batch_max_events: int = Field(default=10_000, ge=1, le=100_000)
    batch_within_s: float = Field(default=0.05, gt=0, le=10)
    redis_ttl_s: int = Field(default=90 * 86_400, ge=0)
    state_cache_clients: int = Field(default=20_000, ge=0)

    @field_validator("processing_guarantee")
    @classmethod
    def _supported_guarantee(cls, value: ProcessingGuarantee) -> ProcessingGuarantee:
        # The worker writes its changelog outside Faust's transactions (it reads its input
        # with its own consumer), so Faust's exactly_once would promise what it cannot keep.
        if value == "exactly_once":
            raise ValueError(
                "exactly_once is not supported: the worker is effectively-once by itself "
                "(each client state records the source offsets it applied); use at_least_once"
            )
        return value

    @field_validator("broker")
    @classmethod
    def _valid_broker(cls, value: str | None) -> str | None:
        if value is not None:
            parse_broker_list(value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _valid_redis_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("redis", "rediss", "unix") or not (
                parts.hostname or parts.path
            ):
                raise ValueError("must look like redis://host:port/db")
        return value

    @property
    def registry_uri(self) -> str:
        """Where models are registered: ``model_registry``, else a directory in the data dir."""
        return self.model_registry or str(self.data_dir / "registry")

    @property
    def worker_id(self) -> str:
        """How records and logs name this worker: app id, host and web port."""
        return f"{self.app_id}@{socket.gethostname()}:{self.web_port}"

    @property
    def stack_dir(self) -> Path:
        """Where the embedded stack keeps pid files, logs and its state file."""
        return self.data_dir / "stack"

    def display(self) -> dict[str, Any]:
        """The settings as a flat mapping for people to read, secrets masked."""
        flat: dict[str, Any] = {}
        for key, value in self.model_dump().items():
            if isinstance(value, dict):
                for sub, subvalue in value.items():
                    flat[f"{key}.{sub}"] = subvalue
            else:
                flat[key] = value
        if self.security.sasl_password is not None:
            flat["security.sasl_password"] = "***"
        if self.redis_url:
            flat["redis_url"] = mask_url_password(self.redis_url)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in flat.items()}
