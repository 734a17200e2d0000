"""``cdp sources add | list | revoke`` against the test's private schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from cdp.cli.main import app
from cdp.collector.sources import hash_key
from cdp.config import Settings, load_settings


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CDP_DATABASE_URL", settings.dsn())
    monkeypatch.setenv("CDP_KAFKA_BOOTSTRAP", settings.bootstrap())
    monkeypatch.setenv("CDP_DATABASE_SCHEMA", settings.database_schema or "")
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def test_sources_cli(cli_env: None, db: psycopg.Connection[Any]) -> None:
    runner = CliRunner()
    added = runner.invoke(app, ["sources", "add", "till-1", "--channel", "store"])
    assert added.exit_code == 0, added.output
    key = added.stdout.strip()
    assert key.startswith("wk_") and len(key) > 20
    stored = db.execute("SELECT write_key_hash FROM sources WHERE name = 'till-1'").fetchone()
    assert stored == (hash_key(key),)  # only the hash is stored

    given = runner.invoke(app, ["sources", "add", "web-1", "--channel", "web", "--write-key",
                                "wk_given_key_123"])  # fmt: skip
    assert given.stdout.strip() == "wk_given_key_123"
    assert runner.invoke(app, ["sources", "add", "till-1", "--channel", "store"]).exit_code == 1
    assert runner.invoke(app, ["sources", "add", "x", "--channel", "fax"]).exit_code == 1

    assert runner.invoke(app, ["sources", "revoke", "till-1"]).exit_code == 0
    assert runner.invoke(app, ["sources", "revoke", "nope"]).exit_code == 1
    listed = runner.invoke(app, ["sources", "list", "--json"])
    rows = {r["name"]: r for r in orjson.loads(listed.stdout)}
    assert set(rows) == {"till-1", "web-1"}
    assert rows["till-1"]["revoked_at"] is not None and rows["web-1"]["revoked_at"] is None
    assert key not in listed.stdout and "write_key" not in listed.stdout
    assert runner.invoke(app, ["sources", "list"]).exit_code == 0
