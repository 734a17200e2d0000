"""Settings: every environment variable the project reads lives in this one class.

Nothing reads the environment at import time; call :func:`load_settings` (or build
:class:`Settings` yourself) where configuration is needed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cdp.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# What every Kafka client of cdp (librdkafka and the Faust workers' aiokafka) supports.
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")


class Settings(BaseSettings):
    """Frozen settings with the ``CDP_`` prefix (e.g. ``CDP_KAFKA_BOOTSTRAP``)."""

    model_config = SettingsConfigDict(env_prefix="CDP_", frozen=True, extra="ignore")

    # --- external services: when both are set, no local stack is started ---
    kafka_bootstrap: str | None = None
    database_url: SecretStr | None = None

    # --- local stack ---
    state_dir: Path = Field(default=PROJECT_ROOT / ".cdp")
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    postgres_port: int = 15432
    kafka_heap: str = "1g"
    postgres_user: str = "cdp"
    postgres_password: SecretStr = SecretStr("cdp")
    postgres_db: str = "cdp"

    # --- Kafka security: every client (librdkafka, and the Faust workers' aiokafka)
    # gets the same settings; check_kafka_security() says what is wrong with them.
    kafka_security_protocol: str = "PLAINTEXT"  # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    kafka_sasl_mechanism: str | None = None  # SCRAM-SHA-256, SCRAM-SHA-512, PLAIN
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # TLS: the CA bundle (PEM) that signed the brokers' certificates (unset: the
    # system's CAs); a client certificate + key (PEM) only for brokers that require
    # TLS client authentication (mutual TLS).
    kafka_ssl_ca_location: str | None = None
    kafka_ssl_certificate_location: str | None = None
    kafka_ssl_key_location: str | None = None
    kafka_ssl_key_password: SecretStr | None = None

    # --- stream workers (Faust) ---
    # How long the group waits for a silent worker before giving its partitions to
    # the others: after a crash those partitions stand still this long. Faust's own
    # default is 60 s; heartbeats go every third of it (at most every 3 s).
    kafka_session_timeout_s: float = Field(default=10.0, ge=6.0, le=300.0)

    # --- topics ---
    # A prefix for every topic name (empty in production: the names are a public
    # contract); tests use it to get private topics on a shared broker.
    topic_prefix: str = ""
    topic_partitions: int = 6
    topic_retention_ms: int = 7 * 24 * 3600 * 1000
    dedup_window_s: int = 7 * 24 * 3600

    # --- identity ---
    identity_secret: SecretStr = SecretStr("cdp-dev-secret-change-me")
    default_phone_region: str = "NL"

    # --- PostgreSQL schema (search_path) for every connection; tests use a private one
    database_schema: str | None = None
    # Least-privilege roles (created by migration 007) the code switches to: workers
    # and the collector write as CDP_DB_ROLE_WORKER, analytics reads as
    # CDP_DB_ROLE_READER. Unset: the login user's own rights.
    db_role_worker: str | None = None
    db_role_reader: str | None = None

    # --- lake ---
    lake_dir: Path | None = None

    # --- worker metrics (Prometheus) ---
    # `cdp worker --processor NAME` serves /metrics on this port; 0 (the default)
    # serves nothing, so workers sharing a machine never clash by accident. Set it
    # per container (deploy/ uses 9400). `cdp worker` without --processor gives its
    # children consecutive ports from here, in registry order (identity 9400,
    # journey 9401, archive 9402, actions 9403).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    # One log line per batch with each partition's position and the batch's offsets
    # (cdp.pipeline.fence.describe): what a post-mortem of a lost or doubled record
    # needs. The chaos suite turns it on.
    log_offsets: bool = False

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        # librdkafka accepts "sasl_ssl"; Faust's enums want "SASL_SSL"
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator(
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
        "kafka_sasl_password",
        "kafka_ssl_ca_location",
        "kafka_ssl_certificate_location",
        "kafka_ssl_key_location",
        "kafka_ssl_key_password",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # an env var set to "" (e.g. an empty entry in a k8s Secret) means unset
        return None if value == "" else value

    def check_kafka_security(self) -> None:
        """Raise :class:`ConfigError`, naming the environment variables, when the Kafka
        security settings are invalid or contradict each other. Every Kafka client
        configuration is built through this check, so a bad combination fails at
        start-up instead of connecting without the credentials (or not at all)."""
        protocol = self.kafka_security_protocol
        if protocol not in KAFKA_SECURITY_PROTOCOLS:
            raise ConfigError(
                f"CDP_KAFKA_SECURITY_PROTOCOL={protocol!r} is not supported: "
                f"use one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}"
            )
        sasl = protocol.startswith("SASL_")
        tls = protocol in ("SSL", "SASL_SSL")
        sasl_settings = (
            ("CDP_KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism),
            ("CDP_KAFKA_SASL_USERNAME", self.kafka_sasl_username),
            ("CDP_KAFKA_SASL_PASSWORD", self.kafka_sasl_password),
        )
        given_sasl = [env for env, value in sasl_settings if value is not None]
        if sasl:
            missing = [env for env, value in sasl_settings if value is None]
            if missing:
                raise ConfigError(
                    f"CDP_KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)} "
                    f"(mechanism: one of {', '.join(KAFKA_SASL_MECHANISMS)})"
                )
            if self.kafka_sasl_mechanism not in KAFKA_SASL_MECHANISMS:
                raise ConfigError(
                    f"CDP_KAFKA_SASL_MECHANISM={self.kafka_sasl_mechanism!r} is not "
                    f"supported: use one of {', '.join(KAFKA_SASL_MECHANISMS)}"
                )
        elif given_sasl:
            raise ConfigError(
                f"{', '.join(given_sasl)} set but CDP_KAFKA_SECURITY_PROTOCOL={protocol} "
                "does not authenticate with SASL: use SASL_SSL (or SASL_PLAINTEXT), or "
                "unset them"
            )
        files = [
            ("CDP_KAFKA_SSL_CA_LOCATION", self.kafka_ssl_ca_location),
            ("CDP_KAFKA_SSL_CERTIFICATE_LOCATION", self.kafka_ssl_certificate_location),
            ("CDP_KAFKA_SSL_KEY_LOCATION", self.kafka_ssl_key_location),
        ]
        given_tls = [env for env, value in files if value is not None]
        if self.kafka_ssl_key_password is not None:
            given_tls.append("CDP_KAFKA_SSL_KEY_PASSWORD")
        if not tls:
            if given_tls:
                raise ConfigError(
                    f"{', '.join(given_tls)} set but CDP_KAFKA_SECURITY_PROTOCOL={protocol} "
                    "does not use TLS: use SSL or SASL_SSL, or unset them"
                )
            return
        if (self.kafka_ssl_certificate_location is None) != (self.kafka_ssl_key_location is None):
            raise ConfigError(
                "TLS client authentication needs both CDP_KAFKA_SSL_CERTIFICATE_LOCATION "
                "and CDP_KAFKA_SSL_KEY_LOCATION (or neither)"
            )
        if self.kafka_ssl_key_password is not None and self.kafka_ssl_key_location is None:
            raise ConfigError(
                "CDP_KAFKA_SSL_KEY_PASSWORD is set without CDP_KAFKA_SSL_KEY_LOCATION"
            )
        for env, value in files:
            if value is not None and not Path(value).is_file():
                raise ConfigError(f"{env}={value}: no such file")

    def external_services(self) -> bool:
        return self.kafka_bootstrap is not None and self.database_url is not None

    @property
    def lake_path(self) -> Path:
        return self.lake_dir if self.lake_dir is not None else self.state_dir / "lake"

    def bootstrap(self) -> str:
        """The Kafka bootstrap address: the external one, or the local stack's."""
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        return f"127.0.0.1:{self.kafka_port}"

    def dsn_as(self, role: str | None) -> str:
        """The PostgreSQL URL that switches to ``role`` at connection (``-c role=``)."""
        url = self.dsn()
        if not role:
            return url
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}options=-c%20role%3D{role}"

    def dsn(self) -> str:
        """The PostgreSQL URL: the external one, or the local stack's."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        password = self.postgres_password.get_secret_value()
        return (
            f"postgresql://{self.postgres_user}:{password}@127.0.0.1:"
            f"{self.postgres_port}/{self.postgres_db}"
        )

    def topic(self, name: str) -> str:
        """The full topic name for a logical name such as ``touchpoints.web``."""
        return f"{self.topic_prefix}cdp.{name}"

    def librdkafka(self, **overrides: Any) -> dict[str, Any]:
        """The confluent-kafka (librdkafka) configuration dict, built only here (the
        Faust workers' equivalent is :func:`streams.security.broker_credentials`).

        Raises :class:`ConfigError` for invalid security settings."""
        self.check_kafka_security()
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap(),
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            conf["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password is not None:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location:
            conf["ssl.ca.location"] = self.kafka_ssl_ca_location
        if self.kafka_ssl_certificate_location:
            conf["ssl.certificate.location"] = self.kafka_ssl_certificate_location
        if self.kafka_ssl_key_location:
            conf["ssl.key.location"] = self.kafka_ssl_key_location
        if self.kafka_ssl_key_password is not None:
            conf["ssl.key.password"] = self.kafka_ssl_key_password.get_secret_value()
        conf.update(overrides)
        return conf


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings()
