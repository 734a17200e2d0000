"""Shared machinery of ``bench/run.py``: private environments on the local stack, a
pre-serialised workload, worker processes, and draining with timestamps.

Every measurement runs in its own :class:`BenchEnv`: a private topic prefix, a private
migrated PostgreSQL schema and a private lake directory, all removed afterwards, so a
benchmark never touches (or is disturbed by data in) the demo's or the tests' topics.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer as KafkaProducer
from confluent_kafka.admin import AdminClient

from cdp.config import PROJECT_ROOT, Settings
from cdp.errors import ValidationError
from cdp.events import dump_event, parse_object
from cdp.kafka.producer import PRODUCER_DEFAULTS
from cdp.kafka.topics import create_topics, topic_specs
from cdp.pipeline.lag import end_offsets, processor_lag
from cdp.store.migrate import migrate
from streams.registry import PROCESSORS as SPECS

PROCESSORS = ("identity", "journey", "archive")
_BATCH = re.compile(r" batch=(\d+)")


# -- the workload ----------------------------------------------------------------------
@dataclass(frozen=True)
class Msg:
    channel: str
    key: bytes
    value: bytes
    message_id: str


@dataclass
class Workload:
    """Generated events, validated and serialised once (as the producer SDK would),
    so every measurement sends byte-identical records."""

    msgs: list[Msg]
    customers: int
    days: int
    seed: int
    invalid: int = 0

    @property
    def distinct(self) -> int:
        return len({m.message_id for m in self.msgs})


def build_workload(events: int, seed: int = 7, days: int = 60) -> Workload:
    """About ``events`` events: the generator emits ~33 events per person per 60 days."""
    from cdp.generate import generate

    customers = max(10, round(events / 33.2 * 60 / days))
    msgs: list[Msg] = []
    invalid = 0
    for raw in generate(customers, days, seed).events():
        try:
            ev = parse_object(dict(raw))
        except ValidationError:
            invalid += 1
            continue
        msgs.append(Msg(ev.channel.value, ev.kafka_key().encode(), dump_event(ev), ev.messageId))
    return Workload(msgs, customers, days, seed, invalid)


def kafka_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    return KafkaProducer(settings.librdkafka(**{**PRODUCER_DEFAULTS, **overrides}))


HEADERS: list[tuple[str, str | bytes | None]] = [("schema_version", b"1"), ("source", b"bench")]


def produce_all(settings: Settings, msgs: list[Msg]) -> float:
    """Send every message to its channel topic as fast as possible; returns seconds."""
    producer = kafka_producer(settings)
    topics = {ch: settings.topic(f"touchpoints.{ch}") for ch in {m.channel for m in msgs}}
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    start = time.perf_counter()
    for m in msgs:
        while True:
            try:
                producer.produce(
                    topics[m.channel], m.value, m.key, headers=HEADERS, on_delivery=on_delivery
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(120)
    if left or failures:
        raise RuntimeError(f"produce failed: {left} unflushed, {failures[:3]}")
    return time.perf_counter() - start


# -- a private environment ---------------------------------------------------------------
def base_settings() -> Settings:
    """``Settings()`` from the environment (honours CDP_KAFKA_BOOTSTRAP/CDP_DATABASE_URL)."""
    return Settings()


@dataclass
class BenchEnv:
    base: Settings
    name: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    settings: Settings = field(init=False)
    tmp: Path = field(init=False)

    def __post_init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"cdp-bench-{self.name}-"))
        self.schema = f"bench_{self.name}_{self.tag}"
        self.settings = self.base.model_copy(
            update={
                "topic_prefix": f"bench-{self.name}-{self.tag}.",
                "database_schema": self.schema,
                "lake_dir": self.tmp / "lake",
            }
        )

    def setup(self) -> BenchEnv:
        with psycopg.connect(self.base.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        with psycopg.connect(
            self.base.dsn(), autocommit=True, options=f"-c search_path={self.schema}"
        ) as conn:
            migrate(conn)
        create_topics(self.settings)
        return self

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.base.dsn(), autocommit=True, options=f"-c search_path={self.schema}"
        )

    def channel_topics(self) -> list[str]:
        return SPECS["identity"].sources(self.settings)

    def teardown(self, groups: list[str] | None = None) -> None:
        s = self.settings
        admin = AdminClient(s.librdkafka())
        names = [spec.name for spec in topic_specs(s)]
        with contextlib.suppress(Exception):
            for fut in admin.delete_topics(names, operation_timeout=30).values():
                with contextlib.suppress(Exception):
                    fut.result()
        wanted = [f"{s.topic_prefix}cdp-{p}" for p in PROCESSORS] + (groups or [])
        with contextlib.suppress(Exception):
            for fut in admin.delete_consumer_groups(wanted, request_timeout=15).values():
                with contextlib.suppress(Exception):
                    fut.result()
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.base.dsn(), autocommit=True) as conn,
        ):
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def bench_env(base: Settings, name: str, groups: list[str] | None = None) -> Iterator[BenchEnv]:
    env = BenchEnv(base, name).setup()
    try:
        yield env
    finally:
        env.teardown(groups)


# -- worker processes --------------------------------------------------------------------
def worker_env(settings: Settings) -> dict[str, str]:
    """As ``tests/integration/workers.worker_env``: the env of a worker on private names."""
    env = dict(os.environ)
    env.update(
        {
            "CDP_KAFKA_BOOTSTRAP": settings.bootstrap(),
            "CDP_DATABASE_URL": settings.dsn(),
            "CDP_TOPIC_PREFIX": settings.topic_prefix,
            "CDP_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "CDP_DATABASE_SCHEMA": settings.database_schema or "",
            "CDP_LAKE_DIR": str(settings.lake_path),
            "CDP_IDENTITY_SECRET": settings.identity_secret.get_secret_value(),
            "PYTHONPATH": str(PROJECT_ROOT),
            "CDP_METRICS_PORT": "0",  # several workers per processor on one machine
        }
    )
    return env


class WorkerPool:
    """``cdp worker --processor NAME`` processes, logs and Faust data in the env's tmp."""

    def __init__(self, env: BenchEnv) -> None:
        self.env = env
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._logs: list[Any] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        log = open(self.env.tmp / f"{name}-{len(self.procs)}.log", "ab")  # noqa: SIM115
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "cdp.cli.main", "worker", "--processor", name],
            env=worker_env(self.env.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.env.tmp,
        )
        self.procs.append((name, proc))
        return proc

    def start_all(self, per_processor: int) -> None:
        for name in PROCESSORS:
            for _ in range(per_processor):
                self.start(name)

    def pids(self, name: str) -> list[int]:
        return [p.pid for n, p in self.procs if n == name]

    def check_alive(self) -> None:
        dead = [(n, p.returncode) for n, p in self.procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"worker(s) exited: {dead}\n{self.logs()}")

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

    def batch_stats(self) -> dict[str, dict[str, float]]:
        """Batches applied per processor and their mean size, from the worker logs."""
        sizes: dict[str, list[int]] = {}
        for path in self.env.tmp.glob("*.log"):
            name = path.stem.rsplit("-", 1)[0]
            for line in path.read_text(errors="replace").splitlines():
                match = _BATCH.search(line)
                if match:
                    sizes.setdefault(name, []).append(int(match.group(1)))
        return {
            n: {"batches": len(v), "mean_size": round(sum(v) / len(v), 1)}
            for n, v in sorted(sizes.items())
        }

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-2000:]
            for p in sorted(self.env.tmp.glob("*.log"))
        )


# -- draining ----------------------------------------------------------------------------
def lags(env: BenchEnv, conn: psycopg.Connection[Any]) -> dict[str, int]:
    s = env.settings
    return {n: processor_lag(s, conn, n, SPECS[n].sources(s)) for n in PROCESSORS}


def wait_drained(
    env: BenchEnv,
    pool: WorkerPool,
    timeout: float,
    on_poll: Callable[[dict[str, int]], None] | None = None,
    interval: float = 0.25,
) -> dict[str, float]:
    """Poll until every processor's lag is 0. Returns wall-clock times (epoch seconds):
    ``first_applied`` (first identity fence row seen, polled), ``identity_drained``
    (the identity processor alone caught up) and ``drained`` (all three)."""
    first_applied: float | None = None
    identity_done: float | None = None
    deadline = time.monotonic() + timeout
    with env.connect() as conn:
        while True:
            pool.check_alive()
            if first_applied is None:
                row = conn.execute(
                    "SELECT count(*) FROM applied_offsets WHERE consumer = 'identity'"
                ).fetchone()
                if row and row[0]:
                    first_applied = time.time()
            current = lags(env, conn)
            if first_applied is not None and not current["identity"]:
                identity_done = identity_done or time.time()
            if on_poll:
                on_poll(current)
            if not any(current.values()) and first_applied is not None:
                now = time.time()
                return {
                    "first_applied": first_applied,
                    "identity_drained": identity_done or now,
                    "drained": now,
                }
            if time.monotonic() > deadline:
                raise TimeoutError(f"not drained after {timeout:.0f}s: {current}\n{pool.logs()}")
            time.sleep(interval)


def channel_total(env: BenchEnv) -> int:
    return sum(end_offsets(env.settings, env.channel_topics()).values())
