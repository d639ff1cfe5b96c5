"""Typed, frozen settings, read once from HITL_* environment variables and an optional TOML file.

The four connection settings are flat, as `deploy/local/stack env` prints them (HITL_KAFKA_BOOTSTRAP,
HITL_POSTGRES_DSN, HITL_ARGILLA_API_URL, HITL_ARGILLA_API_KEY). Groups of settings are nested with a
double underscore: HITL_RUNTIME__BATCH_SIZE=1000, HITL_TOPICS__PREDICTIONS=my.predictions. A TOML
file named by HITL_CONFIG_FILE holds the same keys (`kafka_bootstrap = "..."`, `[runtime]`
`batch_size = 1000`); environment variables win over it.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from workers.errors import ConfigError
from workers.validation_errors import describe

CONFIG_FILE_VARIABLE = "HITL_CONFIG_FILE"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSecurity(Frozen):
    """Passed through to librdkafka; see its CONFIGURATION.md for the meaning of each."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None


class Topics(Frozen):
    predictions: str = "hitl.predictions"
    feedback: str = "hitl.feedback"
    extractions: str = "hitl.extractions"
    decisions: str = "hitl.decisions"
    extractions_valid: str = "hitl.extractions.valid"
    review_tasks: str = "hitl.review.tasks"
    review_resolved: str = "hitl.review.resolved"
    training_examples: str = "hitl.training.examples"
    partitions: int = Field(6, ge=1)
    replication_factor: int = Field(1, ge=1)
    dead_letter_suffix: str = ".dlq"

    def names(self) -> list[str]:
        return [
            self.predictions,
            self.feedback,
            self.extractions,
            self.decisions,
            self.extractions_valid,
            self.review_tasks,
            self.review_resolved,
            self.training_examples,
        ]

    def inputs(self) -> list[str]:
        """Topics some worker consumes, each of which has a dead-letter topic."""
        return [
            self.predictions,
            self.feedback,
            self.extractions,
            self.decisions,
            self.review_tasks,
            self.review_resolved,
        ]

    def dead_letter_topic(self, input_topic: str) -> str:
        return input_topic + self.dead_letter_suffix


class Runtime(Frozen):
    batch_size: int = Field(500, ge=1, le=100_000)
    batch_wait_seconds: float = Field(0.2, gt=0, le=60)
    messages_in_flight: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="input messages produced and unacknowledged at which the loop waits for the broker;"
        " by default four full batches",
    )
    max_value_bytes: int = Field(1_048_576, ge=1024)
    # Kafka's default limit for a topic is 1 MiB per batch, headers and record overhead included.
    max_output_bytes: int = Field(1_000_000, ge=1024)
    transactions: bool = False
    retry_initial_seconds: float = Field(0.5, gt=0)
    retry_max_seconds: float = Field(30.0, gt=0)
    shutdown_timeout_seconds: float = Field(20.0, gt=0)
    commit_interval_ms: int = Field(
        100,
        ge=0,
        le=60_000,
        description="the least time between two commits while input flows (the in-flight limit commits"
        " sooner); 0: every batch is committed as soon as the broker has acknowledged its outputs",
    )
    fetch_backoff_ms: int = Field(
        5,
        ge=0,
        le=1000,
        description="how long the consumer waits to fetch again while messages it fetched are not yet"
        " taken, so that a steady input arrives in batches; 0: it fetches again at once, as librdkafka"
        " does by default",
    )
    statistics_interval_ms: int = Field(5_000, ge=0)
    stall_warning_share: float = Field(
        0.5, gt=0, lt=1, description="share of max.poll.interval.ms after which a batch is called stalled"
    )
    rejoin_timeout_seconds: float = Field(
        120.0,
        gt=0,
        description="how long after losing its partitions the consumer may go without a new assignment"
        " before it is replaced by a new one",
    )

    @property
    def in_flight_limit(self) -> int:
        return self.messages_in_flight or 4 * self.batch_size


def _packaged_policy_file() -> Path:
    # The example policy ships inside the package, so the default works from any folder.
    return Path(str(resources.files("workers.band_router") / "bands.toml"))


class PostgresSettings(Frozen):
    """Limits every PostgreSQL session of the workers gets: nothing waits for the database forever.

    A statement or a lock wait cut short is dependency trouble: the batch is retried later.
    """

    statement_timeout_seconds: float = Field(60.0, gt=0, description="PostgreSQL's statement_timeout")
    lock_timeout_seconds: float = Field(10.0, gt=0, description="PostgreSQL's lock_timeout")


class BandRouterSettings(Frozen):
    policy_file: Path = Field(default_factory=_packaged_policy_file)
    reload_check_seconds: float = Field(
        2.0, gt=0, description="how often the policy file is checked for changes"
    )


class FeedbackTriageSettings(Frozen):
    positive_sample_rate: float = Field(0.05, ge=0, le=1, description="share of thumbs-up sent to review")


class ExtractionValidatorSettings(Frozen):
    schema_modules: tuple[str, ...] = Field(
        ("workers.extraction_validator.examples",),
        description="modules whose import registers extraction schemas (Pydantic models)",
    )


class ArgillaBridgeSettings(Frozen):
    workspace: str = "hitl"
    dataset_prefix: str = "hitl"
    publish_batch_size: int = Field(200, ge=1, le=1000)
    min_submitted: dict[str, int] = Field(
        default_factory=lambda: {"moderation": 1, "rag_answer": 1, "extraction": 1},
        description="submitted responses needed to complete a record, per task kind",
    )
    collector_host: str = "127.0.0.1"
    collector_port: int = Field(8410, ge=0, le=65535)
    collector_public_url: str = Field(
        "http://127.0.0.1:8410/argilla/webhook", description="the URL Argilla calls, as Argilla reaches it"
    )
    reconcile_interval_seconds: float = Field(60.0, gt=0)


ReviewBackendName = Literal["argilla", "label-studio"]
TASK_KINDS = ("moderation", "rag_answer", "extraction")


class ReviewSettings(Frozen):
    """Where review tasks go: one backend for all, or one per task kind."""

    backend: ReviewBackendName = Field("argilla", description="the review tool of every task kind")
    backend_by_kind: dict[Literal["moderation", "rag_answer", "extraction"], ReviewBackendName] = Field(
        default_factory=dict,
        description='the review tool of some task kinds, e.g. {"moderation": "label-studio"}',
    )

    def backend_for(self, kind: str) -> ReviewBackendName:
        return self.backend_by_kind.get(kind, self.backend)  # type: ignore[call-overload, no-any-return]

    def backends_used(self) -> tuple[ReviewBackendName, ...]:
        """The backends some task kind goes to, the default one first (when a kind keeps it)."""
        kinds = sorted(TASK_KINDS, key=lambda kind: kind in self.backend_by_kind)
        return tuple(dict.fromkeys(self.backend_for(kind) for kind in kinds))


class LabelStudioSettings(Frozen):
    """The Label Studio backend (HITL_LABEL_STUDIO_URL and HITL_LABEL_STUDIO_TOKEN connect to it).

    Task kinds and their answers per task come from the same settings as Argilla's
    (HITL_ARGILLA_BRIDGE__MIN_SUBMITTED); the collector listens on the same host and port.
    """

    project_prefix: str = Field("hitl", description="projects are named <prefix>-<kind>-...")
    publish_batch_size: int = Field(200, ge=1, le=1000)
    collector_public_url: str = Field(
        "http://127.0.0.1:8410/label-studio/webhook",
        description="the URL Label Studio calls, as Label Studio reaches it",
    )
    request_timeout_seconds: float = Field(30.0, gt=0)


class LabelSinkSettings(Frozen):
    include_auto_decisions: bool = Field(False, description="also write auto-accepted/rejected decisions")


class QualitySettings(Frozen):
    """The quality-exporter (`hitl-workers run quality-exporter`): loop-quality figures as gauges."""

    refresh_seconds: float = Field(60.0, gt=0, description="how often the gauges are recomputed")
    window_hours: float = Field(168.0, gt=0, description="the gauges cover this many hours up to now")


class GatewaySettings(Frozen):
    """The HTTP gateway (`hitl-workers run gateway`): events posted over HTTP onto the input topics."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535, description="serves the API, /metrics and the widget")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="larger request bodies get 413")
    ack_timeout_seconds: float = Field(
        5.0, gt=0, le=300, description="wait for the broker's acknowledgement before answering 503"
    )
    retry_after_seconds: int = Field(5, ge=1, description="the Retry-After of a 503")
    tokens: tuple[SecretStr, ...] = Field((), description="bearer tokens accepted; none: no token needed")
    tokens_file: Path | None = Field(None, description="a file of bearer tokens, one a line (# comments)")
    cors_origins: tuple[str, ...] = Field((), description="origins whose pages may post (CORS)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HITL_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security: KafkaSecurity = KafkaSecurity()
    kafka_client_config: dict[str, str] = Field(
        default_factory=dict, description="extra librdkafka settings, passed through as given"
    )
    postgres_dsn: SecretStr = SecretStr("postgresql://hitl:hitl@127.0.0.1:5432/hitl")
    postgres: PostgresSettings = PostgresSettings()
    argilla_api_url: str = "http://127.0.0.1:6900"
    argilla_api_key: SecretStr = SecretStr("argilla.apikey")
    label_studio_url: str = "http://127.0.0.1:8090"
    label_studio_token: SecretStr = SecretStr("")
    group_id_prefix: str = "hitl"
    metrics_port: int = Field(9400, ge=0, le=65535, description="0 picks a free port")
    schemas_dir: Path | None = Field(
        None, description="a folder of .avsc files (and history/) to read instead of the packaged schemas"
    )
    topics: Topics = Topics()
    runtime: Runtime = Runtime()
    band_router: BandRouterSettings = BandRouterSettings()
    feedback_triage: FeedbackTriageSettings = FeedbackTriageSettings()
    extraction_validator: ExtractionValidatorSettings = ExtractionValidatorSettings()
    argilla_bridge: ArgillaBridgeSettings = ArgillaBridgeSettings()
    review: ReviewSettings = ReviewSettings()
    label_studio: LabelStudioSettings = LabelStudioSettings()
    label_sink: LabelSinkSettings = LabelSinkSettings()
    gateway: GatewaySettings = GatewaySettings()
    quality: QualitySettings = QualitySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_VARIABLE)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    def group_id(self, worker_name: str) -> str:
        return f"{self.group_id_prefix}.{worker_name}"


def load_settings(**overrides: object) -> Settings:
    """Reads the settings, or raises ConfigError naming every wrong one as its variable."""
    config_file = os.environ.get(CONFIG_FILE_VARIABLE)
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"{CONFIG_FILE_VARIABLE}={config_file}: no such file")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = describe(error, limit=50, path=setting_variable)
        raise ConfigError(f"invalid settings: {problems}") from error


def setting_variable(location: tuple[int | str, ...]) -> str:
    head, *rest = (str(part) for part in location)
    return "HITL_" + "__".join([head.upper(), *(part.upper() for part in rest)])
