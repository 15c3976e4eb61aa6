"""One settings object for the whole platform.

Every component reads its configuration from here, so an environment variable means the
same thing everywhere and a command-line flag only overrides a field of this object.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Platform configuration, from environment variables (names as documented below)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        description="An existing Kafka cluster (host:port,...). Unset: start the embedded broker.",
    )
    schema_registry_url: str | None = Field(
        default=None,
        description="A Confluent-compatible schema registry. Unset: the platform's own registry.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL for the catalogue and SQL sinks. Unset: SQLite under DATAPLATFORM_HOME.",
    )
    dataplatform_home: Path = Field(
        default=Path(".dataplatform"),
        description="Where local state lives: the embedded broker's data, SQLite files, Parquet output.",
    )
    dataplatform_kafka: str = Field(
        default="auto",
        description="How to get a broker when KAFKA_BOOTSTRAP_SERVERS is unset: auto|embedded|testcontainers.",
    )
    kafka_version: str = Field(default="4.1.1", description="Apache Kafka version of the embedded broker.")
    kafka_heap: str = Field(default="512m", description="Java heap of each embedded broker node.")
    kafka_jars_dir: Path | None = Field(
        default=None,
        description="Folder of Kafka's jars. Unset: resolved with Maven into ~/.cache/dataplatform.",
    )

    topic_replication_factor: int | None = Field(
        default=None, ge=1,
        description="Copies of each partition of every topic the platform creates. Unset: 3 on a cluster of "
                    "three or more brokers, else the broker count.")
    topic_min_insync_replicas: int | None = Field(
        default=None, ge=1,
        description="Copies that must hold a write before acks=all acknowledges it. Unset: 2 from a "
                    "replication factor of 3, else 1.")

    kafka_security_protocol: str = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
    kafka_sasl_mechanism: str | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with SASL_*).")
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password (never logged).")
    kafka_sasl_password_file: Path | None = Field(
        default=None, description="A file holding the SASL password, instead of KAFKA_SASL_PASSWORD.")
    kafka_ssl_ca_location: Path | None = Field(
        default=None, description="PEM file of the CA(s) that signed the brokers' certificates.")
    kafka_ssl_certificate_location: Path | None = Field(
        default=None, description="PEM client certificate, for brokers that require mutual TLS.")
    kafka_ssl_key_location: Path | None = Field(default=None, description="PEM private key of the client certificate.")
    kafka_ssl_key_password: SecretStr | None = Field(default=None, description="Password of the client key, if any.")

    sink_personal_data_key: SecretStr | None = Field(
        default=None,
        description="Key for the keyed hash (HMAC-SHA256) sinks store instead of personal fields they are allowed to keep.",
    )

    parquet_roll_size_mb: float = Field(
        default=128.0, gt=0, description="The Parquet sink writes a file once its rows take this many MB in memory.")
    parquet_roll_seconds: float = Field(
        default=900.0, gt=0, description="...or once its first row is this many seconds old (default 15 minutes).")
    parquet_compact_seconds: float = Field(
        default=3600.0, ge=0,
        description="How often the Parquet sink merges the small files of days that are over (0: never).")
    iceberg_catalog: str = Field(
        default="dataplatform",
        description="Name of the Iceberg catalog in pyiceberg's configuration (PYICEBERG_CATALOG__<NAME>__URI, "
                    ".pyiceberg.yaml). Not configured there: the embedded SQL catalog under DATAPLATFORM_HOME/iceberg.")
    outbox_database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of a service's own database, where its outbox table is "
                                  "(`dataplatform outbox`); not the platform's DATABASE_URL.")
    outbox_table: str = Field(default="outbox_events", description="Name of the outbox table (table or schema.table).")
    iceberg_request_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A REST catalog request that takes longer fails, and the Iceberg sink "
                                        "backs off and tries again.")
    iceberg_commit_seconds: float = Field(
        default=300.0, gt=0,
        description="The Iceberg sink commits at least this often (default 5 minutes, as the Iceberg Kafka Connect "
                    "sink): fewer snapshots and larger files than one commit per batch.")
    iceberg_commit_rows: int = Field(
        default=100_000, gt=0, description="...and as soon as it holds this many rows.")
    iceberg_maintenance_seconds: float = Field(
        default=3600.0, ge=0,
        description="How often the Iceberg sink expires old snapshots and removes orphan files (0: never).")
    iceberg_snapshot_retention_hours: float = Field(
        default=168.0, gt=0, description="Iceberg snapshots older than this are expired (default 7 days of time travel).")
    catalogue_refresh_seconds: float = Field(
        default=15.0, gt=0, description="How often the catalogue reads freshness and consumer lag from Kafka.")
    schema_registry_basic_auth_user_info: SecretStr | None = Field(
        default=None,
        description="USER:PASSWORD for a registry that needs HTTP Basic auth (Confluent's basic.auth.user.info).",
    )
    schema_registry_bearer_token: SecretStr | None = Field(
        default=None, description="A static bearer token for the registry, instead of basic auth.")
    schema_registry_bearer_logical_cluster: str | None = Field(
        default=None, description="The registry's logical cluster id, sent with a bearer token (Confluent Cloud).")

    api_write_token: SecretStr | None = Field(
        default=None,
        description="Token for the web API's write operations (registering schemas). Unset: writes are open "
                    "unless API_READ_TOKEN is set, which then protects writes too.",
    )
    api_read_token: SecretStr | None = Field(
        default=None,
        description="Token for reads too. Unset: reads are open.",
    )
    api_max_body_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Largest request body the web service accepts (413 beyond).")
    api_allowed_origins: str = Field(
        default="", description="Comma-separated extra origins (scheme://host:port) allowed to send writes "
                                "from a browser; the service's own origin always is.")
    display_timezone: str = Field(
        default="Europe/London", description="Time zone the web pages show times in (IANA name); the zone is always shown.")
    warnings_runbook_dir: Path | None = Field(
        default=None, description="Folder of runbooks (<rule id>.md) shown with warnings. Unset: the packaged ones.")

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"DISPLAY_TIMEZONE={value!r} is not an IANA time zone, e.g. Europe/London or UTC") from None
        return value
    aws_endpoint_url: str | None = Field(
        default=None, description="SNS/SQS endpoint for the bridges: unset in AWS (boto3 picks the region's); "
                                  "the local server's URL in `run` and the tests.")
    aws_region: str | None = Field(
        default=None, description="AWS region of the bridges' queues; unset: as boto3 finds it (AWS_DEFAULT_REGION, "
                                  "the profile), else eu-west-2.")
    bridge_token_url: str | None = Field(
        default=None, description="OAuth2 token endpoint (client credentials) for the bridges' detailUrl calls, "
                                  "e.g. HMPPS Auth's /auth/oauth/token. Unset: detail calls carry no token.")
    bridge_client_id: str | None = Field(default=None, description="OAuth2 client id of the bridges.")
    bridge_client_secret: SecretStr | None = Field(default=None, description="OAuth2 client secret (never logged).")
    webhook_urls: str = Field(default="", description="Comma-separated URLs that receive warning transitions.")
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC key that signs webhook bodies.")

    def child_environment(self) -> dict[str, str]:
        """These settings as environment variables, for child processes (e.g. Faust workers)
        that must connect the same way. Secrets travel in the environment, never in argv."""
        env = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[name.upper()] = str(value)
        return env

    @property
    def allowed_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.api_allowed_origins.split(",") if o.strip()]

    @property
    def webhook_url_list(self) -> list[str]:
        return [u.strip() for u in self.webhook_urls.split(",") if u.strip()]

    @property
    def kafka_data_dir(self) -> Path:
        return self.dataplatform_home / "kafka"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.dataplatform_home / 'dataplatform.db').resolve()}"


def shown_url(url: str) -> str:
    """A database URL safe to print: its password, if any, masked."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


SHOWN_AT_MOST = 500


def shown(value: object) -> str:
    """A value as an error message quotes it (``repr``), cut to 500 characters: a rejected
    input can be megabytes long, and a message that repeats it all helps nobody."""
    text = repr(value)
    return text if len(text) <= SHOWN_AT_MOST else text[:SHOWN_AT_MOST - 1] + "…"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
