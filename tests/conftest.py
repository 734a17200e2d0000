"""Test fixtures.

Services, in this order of preference:
1. ``CDP_KAFKA_BOOTSTRAP`` + ``CDP_DATABASE_URL`` in the environment: use them.
2. ``CDP_TEST_CONTAINERS=1`` and a Docker engine: testcontainers' Kafka and Postgres.
3. Otherwise a private local stack (real Kafka + real PostgreSQL processes) on free
   ports in a temporary state dir, stopped at the end of the session.

Factory fixtures hand each test its own topics (a unique topic prefix), consumer
group and PostgreSQL schema, so tests never see each other's data.
``CDP_TEST_KEEP_SCHEMAS=1`` keeps each test's schema afterwards, for a post-mortem
against services of your own (1. above); ``CDP_TEST_KEEP_STATE=1`` keeps the private
stack's state dir (3. above: the broker's log dirs and server logs).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cdp.config import Settings
from cdp.kafka.topics import create_topics
from cdp.stack import Stack
from cdp.store.migrate import migrate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath) or "/chaos/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def _containers() -> Iterator[Settings]:  # pragma: no cover - needs a Docker engine
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with KafkaContainer() as kafka, PostgresContainer("postgres:15") as pg:
        url = pg.get_connection_url().replace("+psycopg2", "")
        yield Settings(kafka_bootstrap=kafka.get_bootstrap_server(), database_url=url)


@pytest.fixture(scope="session")
def services() -> Iterator[Settings]:
    """Settings pointing at a real Kafka broker and a real PostgreSQL server."""
    if os.environ.get("CDP_KAFKA_BOOTSTRAP") and os.environ.get("CDP_DATABASE_URL"):
        yield Settings()
        return
    if os.environ.get("CDP_TEST_CONTAINERS") == "1":
        yield from _containers()
        return
    state = Path(tempfile.mkdtemp(prefix="cdp-test-", dir="/tmp"))
    state.chmod(0o755)
    settings = Settings(
        state_dir=state,
        kafka_port=_free_port(),
        kafka_controller_port=_free_port(),
        postgres_port=_free_port(),
        kafka_heap="768m",
    )
    stack = Stack(settings)
    try:
        stack.up()
        yield settings
    finally:
        stack.down()
        if os.environ.get("CDP_TEST_KEEP_STATE"):  # the broker's log dirs, for a post-mortem
            print(f"\nstack state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(services: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    """Per-test settings: a private topic prefix, a private migrated schema, a private lake."""
    schema = f"t_{unique}"
    with psycopg.connect(services.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    per_test = services.model_copy(
        update={
            "topic_prefix": f"t{unique}.",
            "database_schema": schema,
            "topic_partitions": 3,
            "lake_dir": tmp_path / "lake",
        }
    )
    with psycopg.connect(
        services.dsn(), autocommit=True, options=f"-c search_path={schema}"
    ) as conn:
        migrate(conn)
    try:
        yield per_test
    finally:
        if not os.environ.get("CDP_TEST_KEEP_SCHEMAS"):  # kept for a post-mortem
            with psycopg.connect(services.dsn(), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def topics(settings: Settings) -> dict[str, str]:
    """The contract's topics, created under the test's private prefix."""
    return create_topics(settings)


@pytest.fixture
def db(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection on the test's private schema."""
    from cdp.store.connect import connect

    conn = connect(settings, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def consume(settings: Settings) -> Callable[..., list[Any]]:
    """Read every record of a topic from the beginning (until ``n`` or a quiet period)."""
    from confluent_kafka import Consumer

    def _consume(topic: str, n: int | None = None, timeout: float = 20.0) -> list[Any]:
        import time

        consumer = Consumer(
            settings.librdkafka(
                **{
                    "group.id": f"test-{uuid.uuid4().hex[:8]}",
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": False,
                }
            )
        )
        consumer.subscribe([topic])
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        idle_since = time.monotonic()
        try:
            while time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    if n is None and records and time.monotonic() - idle_since > 3:
                        break
                    continue
                if msg.error():
                    continue
                records.append(msg)
                idle_since = time.monotonic()
                if n is not None and len(records) >= n:
                    break
        finally:
            consumer.close()
        return records

    return _consume


@pytest.fixture
def cli(settings: Settings) -> Callable[..., Any]:
    """Run the ``cdp`` CLI in-process against the test's private topics and schema."""
    from typer.testing import CliRunner

    from cdp.cli.main import app
    from cdp.config import load_settings
    from tests.integration.workers import worker_env

    def invoke(*args: str, input: str | None = None) -> Any:
        load_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args), env=worker_env(settings), input=input)
        finally:
            load_settings.cache_clear()

    return invoke


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    """Real `cdp worker` processes on the test's topics and schema, stopped afterwards."""
    from tests.integration.workers import Workers

    w = Workers(settings, tmp_path)
    try:
        yield w
    finally:
        w.stop_all()
