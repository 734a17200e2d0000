"""Run real worker processes (`cdp worker --processor NAME`) against the test's private
topics and schema, and wait for them to drain."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from cdp.config import Settings
from cdp.errors import KafkaError
from cdp.pipeline.lag import processor_lag
from cdp.store.connect import connect
from streams.registry import PROCESSORS


def worker_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CDP_KAFKA_BOOTSTRAP": settings.bootstrap(),
            "CDP_DATABASE_URL": settings.dsn(),
            "CDP_TOPIC_PREFIX": settings.topic_prefix,
            "CDP_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "CDP_DATABASE_SCHEMA": settings.database_schema or "",
            "CDP_LAKE_DIR": str(settings.lake_path),
            "CDP_STATE_DIR": str(settings.state_dir),
            "CDP_IDENTITY_SECRET": settings.identity_secret.get_secret_value(),
            # the workers run with least privilege, as users are told to deploy them
            "CDP_DB_ROLE_WORKER": "cdp_writer",
            "CDP_DB_ROLE_READER": "cdp_reader",
            # many workers share this machine: no metrics port unless a test asks
            "CDP_METRICS_PORT": "0",
            # a SIGKILLed worker's last log lines are what explains a failure
            "PYTHONUNBUFFERED": "1",
            "CDP_LOG_OFFSETS": "1",
        }
    )
    return env


class Workers:
    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._logs: list[Any] = []
        self._log_paths: dict[int, Path] = {}  # by pid

    def start(self, name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start one worker; ``env`` adds to (or overrides) :func:`worker_env`."""
        path = self.log_dir / f"{name}-{len(self.procs)}.log"
        log = open(path, "ab")  # noqa: SIM115
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "cdp.cli.main", "worker", "--processor", name],
            env={**worker_env(self.settings), **(env or {})},
            cwd=self.log_dir,  # nothing a worker writes may land where it was started
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append((name, proc))
        self._log_paths[proc.pid] = path
        return proc

    def has_applied_a_batch(self, proc: subprocess.Popen[bytes]) -> bool:
        """Whether ``proc`` is past its start-up: it has logged a finished batch."""
        return b" batch=" in self._log_paths[proc.pid].read_bytes()

    def batch_in_flight(self, proc: subprocess.Popen[bytes]) -> bool:
        """Whether ``proc`` (stopped) died inside a batch: its last batch started
        (``offsets`` line, ``CDP_LOG_OFFSETS``) and never logged its end (``batch=``)."""
        text = self._log_paths[proc.pid].read_bytes()
        last_start = max(
            (m.start() for m in re.finditer(rb"processor=\w+ offsets ", text)), default=-1
        )
        return last_start > text.rfind(b" batch=")

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        proc.send_signal(sig)
        proc.wait(30)

    def stop_all(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.log_dir.glob("*.log"))

    def wait_drained(self, names: list[str], timeout: float = 120.0) -> None:
        """Until every named processor has applied every record of its sources."""
        conn = connect(self.settings, autocommit=True)
        try:
            deadline = time.monotonic() + timeout
            last_error = ""
            while True:
                try:
                    lags = {
                        n: processor_lag(
                            self.settings, conn, n, PROCESSORS[n].sources(self.settings)
                        )
                        for n in names
                    }
                except (KafkaError, KafkaException) as exc:  # broker restarting: poll again
                    lags = {"unknown": -1}
                    last_error = str(exc)
                if not any(lags.values()):
                    return
                if lags == {"unknown": -1} and time.monotonic() > deadline:
                    raise AssertionError(f"lag unknown: {last_error}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"not drained after {timeout}s: {lags}\n{self.logs()}")
                time.sleep(0.5)
        finally:
            conn.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)
