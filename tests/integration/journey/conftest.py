"""Fixtures: one package-wide private schema + topics, loaded once by the real identity
and journey worker processes with ``SCENARIO`` (tests/integration/test_e2e.py) plus a
cart abandoner and a late visitor that moves the watermark 17 days on.

Loading costs a worker start-up, so the read-side tests share it (they read, and add keys).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer
from typer.testing import CliRunner, Result

from cdp.config import Settings, load_settings
from cdp.kafka.producer import Producer
from cdp.kafka.topics import create_topics
from cdp.store.connect import connect
from cdp.store.migrate import migrate
from tests.integration.test_e2e import SCENARIO, ev
from tests.integration.workers import Workers, worker_env

EXTRA = [
    # a cart abandoner on the app: consideration, cart 2 x 12.50, never comes back
    ev("x1", "app", "Product Added", "02T12:00:00", anonymousId="a-9",
       properties={"product_id": "sku-9", "price": 12.5, "quantity": 2, "name": "Socks"}),
    # a late visitor: the watermark moves to 2026-03-20 08:00, so x1 is stuck (> 14 days)
    ev("x2", "web", "Page Viewed", "20T08:00:00", anonymousId="a-10"),
]  # fmt: skip

Invoke = Callable[..., Result]


@pytest.fixture(scope="package")
def loaded(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Per-package settings (private schema, topics, lake) with the data applied."""
    unique = uuid.uuid4().hex[:10]
    schema = f"t_{unique}"
    tmp: Path = tmp_path_factory.mktemp("journey")
    settings = services.model_copy(
        update={
            "topic_prefix": f"t{unique}.",
            "database_schema": schema,
            "topic_partitions": 3,
            "lake_dir": tmp / "lake",
        }
    )
    with psycopg.connect(services.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with psycopg.connect(
            services.dsn(), autocommit=True, options=f"-c search_path={schema}"
        ) as conn:
            migrate(conn)
        create_topics(settings)
        workers = Workers(settings, tmp)
        try:
            for name in ("identity", "journey"):
                workers.start(name)
            with Producer(settings, source="test") as producer:
                producer.send_many([*SCENARIO, *EXTRA])
            workers.wait_drained(["identity", "journey"], timeout=90)
        finally:
            workers.stop_all()
        yield settings
    finally:
        with psycopg.connect(services.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def ldb(loaded: Settings) -> Iterator[psycopg.Connection[Any]]:
    conn = connect(loaded, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


def make_invoke(settings: Settings, *modules: Any) -> Invoke:
    """Run CLI commands of ``modules`` in-process with the environment of ``settings``."""
    app = typer.Typer()
    for module in modules:
        module.register(app)
    env = worker_env(settings)

    def invoke(*args: str, code: int = 0) -> Result:
        load_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, list(args), env=env)
        finally:
            load_settings.cache_clear()
        assert result.exit_code == code, (result.exit_code, result.output, result.exception)
        return result

    return invoke
