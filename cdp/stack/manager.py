"""Start, stop and describe the local stack as one unit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdp.config import Settings
from cdp.stack.kafka import LocalKafka
from cdp.stack.postgres import LocalPostgres


@dataclass
class Stack:
    settings: Settings

    @property
    def kafka(self) -> LocalKafka:
        s = self.settings
        return LocalKafka(s.state_dir, s.kafka_port, s.kafka_controller_port, s.kafka_heap)

    @property
    def postgres(self) -> LocalPostgres:
        s = self.settings
        return LocalPostgres(
            s.state_dir, s.postgres_port, s.postgres_user,
            s.postgres_password.get_secret_value(), s.postgres_db,
        )  # fmt: skip

    @property
    def external(self) -> bool:
        return self.settings.external_services()

    def up(self) -> None:
        """Idempotent; returns once Kafka answers metadata and PostgreSQL accepts connections."""
        if self.external:
            return
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        pg, kafka = self.postgres, self.kafka
        kafka.start()
        pg.start()
        pg.wait_ready()
        kafka.wait_ready()

    def down(self) -> None:
        from cdp.stack.workers import stop_workers

        stop_workers(self.settings)
        if self.external:
            return
        self.kafka.stop()
        self.postgres.stop()

    def status(self) -> dict[str, Any]:
        s = self.settings
        if self.external:
            return {
                "external": True,
                "kafka": {"bootstrap": s.bootstrap(), "running": None},
                "postgres": {"url": _redact(s.dsn()), "running": None},
            }
        from cdp.stack.workers import running_workers

        kafka, pg = self.kafka, self.postgres
        return {
            "external": False,
            "workers": running_workers(s),
            "state_dir": str(s.state_dir),
            "kafka": {
                "running": kafka.pid() is not None,
                "pid": kafka.pid(),
                "bootstrap": kafka.bootstrap,
                "log": str(kafka.log_file),
            },
            "postgres": {
                "running": pg.is_running(),
                "pid": pg.pid() if pg.is_running() else None,
                "url": _redact(pg.url),
                "log": str(pg.log_file),
            },
        }


def _redact(url: str) -> str:
    """Hide the password in a URL for display."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
