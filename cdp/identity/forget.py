"""``cdp identity forget``: erase a person from PostgreSQL and the lake, and suppress
their future events.

What is erased: every identities row of the customer, the customer and every
customer id merged into it, their merges, conflicts, evidence links, journey, the
journey's stored events, transitions and redirects, their activation facts, pending
timers, decided actions (payloads) and webhook deliveries, and every lake row
attributed to any of those customer ids (files are rewritten without them,
atomically). What
remains: the raw channel topics, `cdp.touchpoints.resolved` and `cdp.deadletter` keep
records until their retention expires (Kafka cannot delete single records from
delete-policy topics); keep their retention short (CDP_TOPIC_RETENTION_MS) if erasure
deadlines matter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from cdp.activation.processor import lock as actions_lock
from cdp.config import Settings
from cdp.errors import CDPError
from cdp.identity.forget_keys import suppress_hash
from cdp.identity.processor import LOCK_KEY
from cdp.identity.queries import IdentityQueries
from cdp.journey.processor import lock as journey_lock
from cdp.lake.layout import part_files
from cdp.lake.rows import SCHEMA
from cdp.lake.writer import write_table


@dataclass(frozen=True)
class ForgetResult:
    customer_ids: list[str]
    identifiers: int
    database_rows: int
    lake_rows: int
    lake_files: int


def forget(conn: psycopg.Connection[Any], settings: Settings, ref: str) -> ForgetResult:
    queries = IdentityQueries(conn, settings)
    secret = settings.identity_secret.get_secret_value().encode()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        journey_lock(conn)  # after the identity lock, as a split takes them
        actions_lock(conn)
        customer = queries.customer_for(ref)
        if customer is None:
            raise CDPError(f"no customer for {ref}")
        ids = sorted(
            {customer}
            | {r[0] for r in conn.execute(
                "SELECT old_id FROM customer_redirects WHERE customer_id = %s", (customer,))}
        )  # fmt: skip
        nodes = [r[0] for r in conn.execute(
            "SELECT node_id FROM identities WHERE customer_id = %s", (customer,))]  # fmt: skip
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO identity_suppressed (suppress_hash) VALUES (%s)"
                " ON CONFLICT DO NOTHING",
                [(suppress_hash(secret, n),) for n in nodes],
            )
        deleted = 0
        for sql, args in (
            ("DELETE FROM identity_links WHERE nodes && %s", (nodes,)),
            ("DELETE FROM conflicts WHERE customer_a = ANY(%s) OR customer_b = ANY(%s)",
             (ids, ids)),
            ("DELETE FROM merges WHERE winner = ANY(%s) OR loser = ANY(%s)", (ids, ids)),
            ("DELETE FROM customer_redirects WHERE old_id = ANY(%s) OR customer_id = ANY(%s)",
             (ids, ids)),
            ("DELETE FROM transitions WHERE customer_id = ANY(%s)", (ids,)),
            ("DELETE FROM journey WHERE customer_id = ANY(%s)", (ids,)),
            ("DELETE FROM journey_events WHERE customer_id = ANY(%s) OR node_id = ANY(%s)",
             (ids, nodes)),
            ("DELETE FROM activation_deliveries WHERE action_id IN ("
             " SELECT action_id FROM activation_actions WHERE customer_id = ANY(%s))", (ids,)),
            ("DELETE FROM activation_actions WHERE customer_id = ANY(%s)", (ids,)),
            ("DELETE FROM activation_timers WHERE customer_id = ANY(%s)", (ids,)),
            ("DELETE FROM activation_cancels WHERE customer_id = ANY(%s)", (ids,)),
            ("DELETE FROM activation_profiles WHERE customer_id = ANY(%s)", (ids,)),
            ("DELETE FROM identities WHERE customer_id = %s", (customer,)),
            ("DELETE FROM customers WHERE customer_id = ANY(%s) OR merged_into = ANY(%s)",
             (ids, ids)),
        ):  # fmt: skip
            deleted += conn.execute(sql, args).rowcount
    lake_rows, lake_files = erase_from_lake(settings.lake_path, ids)
    return ForgetResult(ids, len(nodes), deleted, lake_rows, lake_files)


def erase_from_lake(lake_dir: Path, customer_ids: Iterable[str]) -> tuple[int, int]:
    """Rewrite every lake file holding rows of these customers without them."""
    targets = sorted(set(customer_ids))
    removed = files = 0
    for part in part_files(lake_dir):
        table = pq.read_table(part.path, schema=SCHEMA)
        hit = pc.is_in(table["customer_id"], value_set=pa.array(targets, pa.string()))
        n = pc.sum(hit).as_py() or 0
        if not n:
            continue
        kept = table.filter(pc.invert(hit))
        if kept.num_rows:
            write_table(kept, part.path)
        else:
            part.path.unlink()
        removed += n
        files += 1
    return removed, files
