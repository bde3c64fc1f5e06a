"""The one settings object of a FlowForge process (environment prefix ``FLOWFORGE_``).

With nothing set, everything is embedded: SQLite in the data dir, the lake on local disk,
tasks executed in-process.

Outside the ``local`` environment (``FLOWFORGE_ENVIRONMENT``), :meth:`Settings.refuse_unsafe`
refuses what is only fit for a laptop: a placeholder or short admin token or service secret,
connection passwords encrypted with a key file generated into the data dir, a SQLite
database. Every app and worker calls it before it starts.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flowforge_shared.errors import FlowForgeError

LOCAL = "local"
MIN_SECRET_LENGTH = 32
"""Shortest admin token or service secret accepted outside local (a generated token has 46)."""
PLACEHOLDER_PREFIX = "change-me"


# The services that own tables, each in its own database or all in one (database_url_for).
SERVICES_WITH_DATABASES = ("catalog", "orchestrator", "lineage")


class UnsafeSettings(FlowForgeError, ValueError):
    """A setting that is fine on a laptop and refused outside the local environment."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWFORGE_", extra="ignore")

    data_dir: Path = Field(default=Path(".flowforge"), description="Where embedded state lives")
    web_dist: Path | None = Field(
        default=None,
        description="The web UI's built bundle (index.html and assets/), served at /; default "
        "services/web/dist of this checkout (built by make serve / make demo)",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the database every service uses unless it has its own "
        "below; default SQLite in the data dir",
    )
    catalog_database_url: str | None = Field(
        default=None,
        description="The catalog's own database (workflows, jobs, connections, files, "
        "templates, assets, tokens, audit); default FLOWFORGE_DATABASE_URL",
    )
    orchestrator_database_url: str | None = Field(
        default=None,
        description="The orchestrator's own database (executions, job runs, run events, "
        "watermarks, triggers); default FLOWFORGE_DATABASE_URL",
    )
    lineage_database_url: str | None = Field(
        default=None,
        description="The lineage service's own database (its graph); default "
        "FLOWFORGE_DATABASE_URL",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bootstrap admin token; generated into the data dir if unset"
    )
    environment: str = Field(
        default=LOCAL,
        description="local, development, staging, production; anything but local refuses "
        "unsafe settings at start (see refuse_unsafe)",
    )
    auto_migrate: bool | None = Field(
        default=None,
        description="Migrate the database on start; default on for the embedded SQLite database",
    )
    storage_url: str | None = Field(
        default=None,
        description="Root of the lake: a local path or s3://bucket/prefix; default <data dir>/lake",
    )
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_allow_http: bool = False
    s3_conditional_put: str | None = Field(
        default=None, description="'etag' for MinIO; unset uses the store's put-if-absent"
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker (redis://...); unset runs tasks in-process (embedded default)",
    )
    broker_visibility_timeout: int = Field(
        default=7200,
        description="Seconds before an unacknowledged task returns to the queue; must exceed "
        "task_time_limit (see RELIABILITY-NOTES)",
    )
    lineage_visibility_timeout: int = Field(
        default=60,
        ge=1,
        description="Seconds before a run event the lineage worker took and did not "
        "acknowledge (it died) returns to the lineage queue: its tasks are short and "
        "idempotent, so the graph catches up in seconds instead of broker_visibility_timeout",
    )
    task_time_limit: int = Field(default=3600, description="Hard limit of one task, seconds")
    task_max_retries: int = Field(default=5, description="Retries of a transient failure")
    task_retry_backoff: float = Field(default=2.0, description="First retry delay, seconds")
    task_retry_backoff_max: float = Field(default=300.0, description="Longest retry delay")
    embedded_workers: int = Field(default=4, description="Threads running tasks in-process")
    distributed_ranges: bool = Field(
        default=True,
        description="With a broker, read the key ranges of a parallel read as tasks on the "
        "ingest queue (docs/connectors.md); false keeps them threads of the job's worker",
    )
    range_claim_ttl: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a range claim of a distributed parallel read lives without its "
        "holder's heartbeat; a claim expired this long ago is taken over by the job",
    )
    heartbeat_interval: float = Field(
        default=10.0, ge=0, description="Seconds between a running job's heartbeats (0: none)"
    )
    heartbeat_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds without a heartbeat after which a running job's worker is lost "
        "(the job is retried, or failed once out of attempts)",
    )
    dispatch_grace: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a committed dispatch may stay unsent before the reaper sends it",
    )
    reaper_interval: float = Field(
        default=5.0, gt=0, description="Seconds between two passes of the reaper"
    )
    scheduler_interval: float = Field(
        default=1.0, gt=0, le=60, description="Seconds between two passes of the scheduler"
    )
    scheduler_misfire_grace: float = Field(
        default=60.0,
        ge=0,
        description="Seconds a firing may be late and still count as on time (not a misfire)",
    )
    scheduler_embedded: bool = Field(
        default=True,
        description="Run the scheduler in `flowforge serve` (the embedded default)",
    )
    landing_dir: Path | None = Field(
        default=None, description="Local landing area for files; default <data dir>/landing"
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key(s), comma-separated, first encrypts; default a key file in the "
        "data dir",
    )
    connection_allow: str = Field(
        default="", description="Comma-separated CIDRs/hosts connections may target (empty: any)"
    )
    connection_deny: str = Field(
        default="", description="Comma-separated CIDRs/hosts connections may never target"
    )
    sqlite_dir: Path | None = Field(
        default=None,
        description="Directory SQLite sources may be read from; default <data dir>/sources",
    )
    ca_dir: Path | None = Field(
        default=None,
        description="Directory of CA certificates (PEM) a connection's caFile may name; "
        "default <data dir>/ca",
    )
    incremental_lookback_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Incremental reads of timestamp/date delta columns re-read this window "
        "before the watermark (late-committed rows); rows bronze already holds are dropped",
    )
    incremental_lookback_rows: int = Field(
        default=0, ge=0, description="The same for integer and rowversion delta columns"
    )
    operation_timeout: float = Field(
        default=30.0, description="Seconds the API waits for a worker's database operation"
    )
    upload_max_bytes: int = Field(default=1024**3, description="Largest upload accepted, bytes")
    detection_sample_bytes: int = Field(
        default=4 * 1024 * 1024, description="Bytes of a file schema detection samples"
    )
    table_maintenance: bool = Field(
        default=True,
        description="Maintain a table after each successful write (checkpoint interval, "
        "compaction, vacuum; see flowforge_shared.maintenance)",
    )
    table_checkpoint_interval: int = Field(
        default=10, ge=1, description="A Delta checkpoint every N commits of a table"
    )
    table_compact_min_files: int = Field(
        default=16,
        ge=0,
        description="Compact a table when it has more than N small data files (0: never)",
    )
    table_small_file_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1, description="A data file smaller than this is small"
    )
    table_target_file_bytes: int = Field(
        default=128 * 1024 * 1024, ge=1, description="Size compaction aims its files at"
    )
    table_vacuum_retention_hours: int = Field(
        default=168,
        ge=0,
        description="Vacuum files removed from a table longer ago than this (0: no automatic "
        "vacuum); never less than 6 h or twice the task time limit",
    )
    catalog_url: str | None = Field(
        default=None,
        description="Where a process that does not serve the catalog asks it to check tokens "
        "(e.g. http://catalog:8000)",
    )
    orchestrator_url: str | None = Field(
        default=None,
        description="Where a catalog served apart from the orchestrator asks which active runs "
        "write a table before it restores, resets, drops or maintains it "
        "(e.g. http://orchestrator:8000)",
    )
    service_secret: SecretStr | None = Field(
        default=None,
        description="Shared by the services: the credential a service shows the catalog's "
        "internal token introspection",
    )
    token_cache_ttl: float = Field(
        default=30.0,
        ge=0,
        description="Seconds a service not serving the catalog trusts the catalog's answer "
        "about a token (a revoked token keeps working there for at most this long)",
    )
    token_check_ttl: float = Field(
        default=2.0,
        ge=0,
        description="Seconds a process serving the catalog keeps a valid token's principal in "
        "memory instead of reading the token table on every request (0: read it every time). "
        "A token revoked through this process stops working at once; revoked through another "
        "process sharing the database (another replica), within this many seconds",
    )
    token_stale_ttl: float = Field(
        default=900.0,
        ge=0,
        description="Seconds a service not serving the catalog keeps using its last answer "
        "about a token while the catalog does not answer (0: never), so run status stays "
        "readable through a catalog outage; a token revoked just before it works that long",
    )
    openlineage_url: str | None = Field(
        default=None,
        description="Where the lineage service also sends every run event it applies (an "
        "OpenLineage HTTP endpoint: Marquez, DataHub, OpenMetadata), e.g. http://marquez:5000; "
        "unset or empty: nowhere",
    )
    openlineage_endpoint: str = Field(
        default="api/v1/lineage", description="Path of that endpoint, relative to the URL"
    )
    openlineage_api_key: SecretStr | None = Field(
        default=None, description="Sent to that endpoint as 'Authorization: Bearer <key>'"
    )
    openlineage_timeout: float = Field(
        default=5.0, gt=0, description="Seconds one attempt to send an event may take"
    )
    openlineage_retries: int = Field(
        default=5,
        ge=0,
        description="Retries of an event the endpoint refuses (connection refused, timeout, "
        "5xx), with the client's exponential backoff (0.3 s doubling: 5 retries wait ~9 s)",
    )
    openlineage_queue_size: int = Field(
        default=10_000,
        ge=1,
        description="Events waiting to be sent, at most; beyond it new events are dropped "
        "(and counted in the log), so a dead endpoint never holds memory or a run",
    )
    openlineage_max_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Largest OpenLineage event POST /api/v1/lineage accepts, bytes "
        "(after gzip decompression too)",
    )
    telemetry_exporter: str = Field(default="none", description="none, console or otlp")
    otlp_endpoint: str | None = None
    service_name: str = "flowforge"

    @field_validator("telemetry_exporter")
    @classmethod
    def _known_exporter(cls, value: str) -> str:
        if value not in {"none", "console", "otlp"}:
            raise ValueError("telemetry_exporter must be none, console or otlp")
        return value

    @field_validator("openlineage_url")
    @classmethod
    def _openlineage_url(cls, value: str | None) -> str | None:
        # docker-compose passes ${FLOWFORGE_OPENLINEAGE_URL:-}: empty means not set.
        value = (value or "").strip() or None
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    "openlineage_url must be an http(s) URL such as http://marquez:5000"
                )
        return value

    @model_validator(mode="after")
    def _lease_outlives_beats(self) -> Settings:
        if self.heartbeat_interval and self.heartbeat_timeout < 2 * self.heartbeat_interval:
            raise ValueError(
                "heartbeat_timeout must be at least twice heartbeat_interval, or one late beat "
                "would make a live job look lost"
            )
        return self

    @property
    def is_local(self) -> bool:
        return self.environment == LOCAL

    def unsafe_reasons(self) -> list[str]:
        """What this process must not start with outside local, one phrase per setting."""
        if self.is_local:
            return []
        reasons = []
        for name, value in (
            ("FLOWFORGE_ADMIN_TOKEN", self.admin_token),
            ("FLOWFORGE_SERVICE_SECRET", self.service_secret),
        ):
            # Unset is fine: the admin token is then generated, the service secret only
            # needed where a service checks tokens with the catalog (which asks for it).
            if value is not None and _is_placeholder(value.get_secret_value()):
                reasons.append(
                    f"{name} is a placeholder or shorter than {MIN_SECRET_LENGTH} characters"
                )
        if self.secret_key is None or not self.secret_key.get_secret_value().strip():
            reasons.append(
                "FLOWFORGE_SECRET_KEY is not set (the key file in the data dir is for local only)"
            )
        on_sqlite = {
            _database_setting(service, self): None  # one phrase per setting, in order
            for service in SERVICES_WITH_DATABASES
            if self.database_url_for(service).startswith("sqlite")
        }
        reasons.extend(f"{name} is SQLite (use PostgreSQL)" for name in on_sqlite)
        return reasons

    def refuse_unsafe(self) -> None:
        """:class:`UnsafeSettings` (one line naming each setting) when a process must not start."""
        reasons = self.unsafe_reasons()
        if reasons:
            raise UnsafeSettings(
                f"refusing to start with FLOWFORGE_ENVIRONMENT={self.environment}: "
                + "; ".join(reasons)
            )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'flowforge.db').resolve()}"

    def database_url_for(self, service: str) -> str:
        """The database of ``service`` (catalog, orchestrator, lineage): its own URL setting,
        else the one database."""
        if service not in SERVICES_WITH_DATABASES:
            raise ValueError(f"no service {service!r} owns a database")
        return getattr(self, f"{service}_database_url") or self.resolved_database_url

    @property
    def landing_root(self) -> str:
        """Where fileConfig.filePath is resolved: local dir, or <storage root>/landing on S3."""
        if self.landing_dir is not None:
            return str(self.landing_dir.resolve())
        if self.storage_url and self.storage_url.startswith("s3://"):
            return self.storage_url.rstrip("/") + "/landing"
        return str((self.data_dir / "landing").resolve())

    @property
    def sqlite_root(self) -> Path:
        return (self.sqlite_dir or self.data_dir / "sources").resolve()

    @property
    def ca_root(self) -> Path:
        return (self.ca_dir or self.data_dir / "ca").resolve()

    @property
    def allow_list(self) -> list[str]:
        return [item.strip() for item in self.connection_allow.split(",") if item.strip()]

    @property
    def deny_list(self) -> list[str]:
        return [item.strip() for item in self.connection_deny.split(",") if item.strip()]

    @property
    def lake_root(self) -> str:
        if self.storage_url:
            return self.storage_url.rstrip("/")
        return str((self.data_dir / "lake").resolve())

    @property
    def storage_options(self) -> dict[str, str]:
        """deltalake/object_store options for an S3 lake; empty for the local disk."""
        if not self.lake_root.startswith("s3://"):
            return {}
        options = {"AWS_REGION": self.s3_region}
        if self.s3_endpoint_url:
            options["AWS_ENDPOINT_URL"] = self.s3_endpoint_url
        if self.s3_access_key_id:
            options["AWS_ACCESS_KEY_ID"] = self.s3_access_key_id
        if self.s3_secret_access_key:
            options["AWS_SECRET_ACCESS_KEY"] = self.s3_secret_access_key.get_secret_value()
        if self.s3_allow_http:
            options["AWS_ALLOW_HTTP"] = "true"
        if self.s3_conditional_put:
            options["conditional_put"] = self.s3_conditional_put
        return options

    @property
    def embedded_tasks(self) -> bool:
        return not self.broker_url

    @property
    def is_embedded_database(self) -> bool:
        """Every service's database is SQLite (the embedded default)."""
        return all(
            self.database_url_for(service).startswith("sqlite")
            for service in SERVICES_WITH_DATABASES
        )

    @property
    def should_auto_migrate(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.is_embedded_database


def _database_setting(service: str, settings: Settings) -> str:
    """The setting that names ``service``'s database."""
    if getattr(settings, f"{service}_database_url"):
        return f"FLOWFORGE_{service.upper()}_DATABASE_URL"
    return "FLOWFORGE_DATABASE_URL"


def _is_placeholder(value: str) -> bool:
    return value.strip().lower().startswith(PLACEHOLDER_PREFIX) or len(value) < MIN_SECRET_LENGTH
