"""Settings: every environment variable the project reads lives in this one class.

Nothing reads the environment at import time; call :func:`load_settings` (or build
:class:`Settings` yourself) where configuration is needed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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

    # --- Kafka security (passed through to librdkafka / aiokafka) ---
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = None

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
        """The confluent-kafka (librdkafka) configuration dict, built only here."""
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
        conf.update(overrides)
        return conf


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings()
