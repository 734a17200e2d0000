"""The identity processor on real PostgreSQL, driven batch by batch (no Faust), so
redelivery, batch boundaries and duplicates can be controlled exactly."""

from __future__ import annotations

import random
from typing import Any

import orjson

from cdp.config import Settings
from cdp.identity.processor import IdentityProcessor
from cdp.pipeline.records import Record
from cdp.pipeline.runner import BatchRunner
from tests.integration.test_e2e import SCENARIO


def _records(settings: Settings, events: list[dict[str, Any]]) -> list[Record]:
    """``events`` as records of their channel topics, numbered per partition from 0 as
    Kafka would: the runner reads any gap back from the broker, where these are not."""
    next_offset: dict[str, int] = {}
    records = []
    for e in events:
        topic = settings.topic(f"touchpoints.{e['channel']}")
        offset = next_offset[topic] = next_offset.get(topic, -1) + 1
        records.append(Record(topic, 0, offset, None, orjson.dumps(e)))
    return records


def _clusters(db: Any) -> set[frozenset[str]]:
    rows = db.execute("SELECT customer_id, node_id FROM identities").fetchall()
    by: dict[str, set[str]] = {}
    for cid, node in rows:
        by.setdefault(cid, set()).add(node)
    return {frozenset(v) for v in by.values()}


def test_batches_redelivery_and_order_give_the_same_graph(
    settings: Settings, topics: dict[str, str], db: Any
) -> None:
    records = _records(settings, SCENARIO)
    runner = BatchRunner(settings, IdentityProcessor(settings))
    runner.run(records[:3])
    runner.run(records)  # redelivery of the first three + the rest
    first = _clusters(db)
    ann = db.execute(
        "SELECT customer_id FROM identities GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]
    assert db.execute(
        "SELECT count(*) FROM identities WHERE customer_id = %s", (ann,)
    ).fetchone() == (4,)
    # a merge is recorded only when two stored customers become one
    merges = db.execute("SELECT count(*) FROM merges").fetchone()[0]
    assert db.execute("SELECT count(*) FROM customer_redirects").fetchone() == (merges,)
    assert db.execute("SELECT count(*) FROM identity_links").fetchone() == (2,)
    assert db.execute("SELECT count(*) FROM seen_messages").fetchone() == (len(SCENARIO),)
    masked = {r[0] for r in db.execute("SELECT masked FROM identities")}
    assert "a***@example.nl" in masked
    assert not any("ann@" in m or "6012" in m for m in masked), "no plaintext in the database"
    runner.close()

    # the same events in another order, other batch boundaries, into a fresh schema
    for tbl in ("identities", "customers", "merges", "customer_redirects", "identity_links",
                "seen_messages", "applied_offsets", "conflicts"):  # fmt: skip
        db.execute(f"TRUNCATE {tbl}")
    shuffled = list(SCENARIO)
    random.Random(7).shuffle(shuffled)
    records = _records(settings, shuffled)
    runner = BatchRunner(settings, IdentityProcessor(settings))
    for i in range(0, len(records), 2):
        runner.run(records[i : i + 2])
    assert _clusters(db) == first
    assert db.execute(
        "SELECT count(*) FROM identities WHERE customer_id = %s", (ann,)
    ).fetchone() == (4,), "the canonical customer id does not depend on order"
    runner.close()
