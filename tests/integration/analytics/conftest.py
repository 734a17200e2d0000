"""Fixtures: the hand-built dataset loaded into the private schema and lake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import psycopg
import pytest

from cdp.analytics import connect
from cdp.config import Settings
from cdp.lake import LakeWriter
from tests.integration.analytics import dataset as ds


def _load_postgres(db: psycopg.Connection[Any]) -> None:
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO customers (customer_id, anchor_node, merged_into) VALUES (%s, %s, %s)",
            [(c, f"node-{c}", ds.REDIRECTS.get(c)) for c in sorted({e.cid for e in ds.EVENTS})],
        )
        cur.executemany(
            "INSERT INTO customer_redirects (old_id, customer_id) VALUES (%s, %s)",
            list(ds.REDIRECTS.items()),
        )
        cur.execute(
            "INSERT INTO identities (node_id, id_type, customer_id, masked, first_seen,"
            " last_seen, first_channel, last_channel)"
            " VALUES ('h1', 'email', 'cus_b', 'c***@example.com', now(), now(), 'web', 'web')"
        )
        cur.executemany(
            "INSERT INTO transitions (transition_id, customer_id, from_stage, to_stage,"
            " event_time) VALUES (%s, %s, %s, %s, %s)",
            ds.TRANSITIONS,
        )
        cur.executemany(
            "INSERT INTO journey (customer_id, stage, stage_since, summary)"
            " VALUES (%s, %s, %s, '{}')",
            ds.JOURNEY,
        )


def _write_lake(settings: Settings) -> None:
    writer = LakeWriter(settings.lake_path, durable=False)
    records = [(i, ds.resolved(e)) for i, e in enumerate(ds.EVENTS)]
    # Two partitions, several batches, one batch rewritten and one event redelivered.
    writer.write_batch(0, records[:8])
    writer.write_batch(0, records[:8])
    writer.write_batch(0, records[8:15])
    writer.write_batch(1, [(100 + i, r) for i, r in records[15:]])
    writer.write_batch(1, [(200, records[3][1])])


@pytest.fixture
def loaded(settings: Settings, db: psycopg.Connection[Any]) -> Settings:
    """The dataset in PostgreSQL and the lake; returns the settings."""
    _load_postgres(db)
    _write_lake(settings)
    return settings


@pytest.fixture
def con(loaded: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect(loaded)
    try:
        yield connection
    finally:
        connection.close()
