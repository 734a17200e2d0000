"""`cdp identity forget`: afterwards no store holds the person's plaintext or their
identifier hashes, and their future events are dropped."""

from __future__ import annotations

from typing import Any

import duckdb
import orjson

from cdp.config import Settings
from cdp.identity.queries import IdentityQueries
from cdp.kafka.producer import Producer
from cdp.lake.layout import lake_glob
from tests.integration.test_e2e import SCENARIO
from tests.integration.workers import Workers

PROCESSORS = ["identity", "journey", "archive", "actions"]

ANN = ["email:ann@example.nl", "user_id:u-1", "anonymous_id:a-1", "loyalty_card:6012 3456"]
PLAIN = ["ann@example.nl", "Ann@Example.NL", "60123456", "6012 3456", "6012-3456"]


def table_names(db: Any) -> list[str]:
    return [
        r[0]
        for r in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    ]


def everything_in_postgres(db: Any) -> str:
    return "\n".join(repr(db.execute(f'SELECT * FROM "{t}"').fetchall()) for t in table_names(db))


def where(db: Any, needle: str) -> list[str]:
    """The tables whose rows mention ``needle`` (for the failure message)."""
    return [
        t for t in table_names(db) if needle in repr(db.execute(f'SELECT * FROM "{t}"').fetchall())
    ]


def everything_in_the_lake(settings: Settings) -> str:
    return repr(
        duckdb.sql(f"SELECT * FROM read_parquet('{lake_glob(settings.lake_path)}')").fetchall()
    )


def test_forget_leaves_no_trace_and_suppresses(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any, cli: Any
) -> None:
    for name in PROCESSORS:
        workers.start(name)
    with Producer(settings) as producer:
        producer.send_many(SCENARIO)
    workers.wait_drained(PROCESSORS)
    queries = IdentityQueries(db, settings)
    hashes = [queries.node_id(spec) for spec in ANN]
    customer = queries.customer_for(ANN[0])
    assert customer is not None and all(hashes)
    before_pg, before_lake = everything_in_postgres(db), everything_in_the_lake(settings)
    assert customer in before_pg and customer in before_lake  # the search can find things
    held = db.execute("SELECT count(*) FROM activation_profiles WHERE customer_id = %s",
                      (customer,)).fetchone()  # fmt: skip
    assert held == (1,), "activation knows her too"

    result = cli("identity", "forget", ANN[0], "--yes", "--json")
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert summary["identifiers"] == 4 and summary["lake_rows"] >= 4

    pg, lake = everything_in_postgres(db), everything_in_the_lake(settings)
    for needle in [*PLAIN, *(h for h in hashes if h), *summary["customer_ids"]]:
        assert needle not in pg, f"{needle} still in PostgreSQL: {where(db, needle)}"
        assert needle not in lake, f"{needle} still in the lake"
    assert db.execute("SELECT count(*) FROM identities").fetchone()[0] > 0

    # future events with any of her identifiers are dropped
    with Producer(settings) as producer:
        producer.send({"messageId": "after-1", "type": "track", "event": "Product Viewed",
                       "channel": "web", "timestamp": "2026-04-01T10:00:00Z",
                       "identifiers": {"email": "ANN@example.nl"}})  # fmt: skip
    workers.wait_drained(PROCESSORS)
    assert queries.customer_for(ANN[0]) is None
    assert "after-1" not in everything_in_the_lake(settings)
