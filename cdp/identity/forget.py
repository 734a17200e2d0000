"""``cdp identity forget``: erase a person from PostgreSQL, the lake and the Kafka
topics, and suppress their future events.

In three steps, each safe to repeat:

1. under the identity lock, read who the person is (customer ids, identifier
   hashes) and suppress their identifiers: from then on the pipeline drops their
   events;
2. erase their records from every cdp topic (channel topics, resolved events,
   transitions, actions, dead letters) once every processor has applied them (see
   :mod:`cdp.identity.forget_topics`);
3. rewrite the lake files holding their rows, then delete every PostgreSQL row about
   them: identities, the customer and every customer id merged into it, merges,
   conflicts, evidence links, journey, stored events, transitions and redirects,
   activation facts, timers, decided actions and webhook deliveries.

If it stops before 3 (a processor is not running, the broker is down), the person
is suppressed but still findable, so running forget again finishes the job.
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
from cdp.identity.forget_match import PersonMatcher
from cdp.identity.forget_topics import Progress, TopicErasure, erase_from_topics
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
    topics: TopicErasure | None  # None: topics were not searched (``--no-topics``)


@dataclass(frozen=True)
class _Person:
    customer: str
    ids: list[str]  # the customer id and every id merged into it
    nodes: list[str]


def forget(
    conn: psycopg.Connection[Any],
    settings: Settings,
    ref: str,
    *,
    topics: bool = True,
    wait_s: float = 60.0,
    progress: Progress | None = None,
) -> ForgetResult:
    queries = IdentityQueries(conn, settings)
    secret = settings.identity_secret.get_secret_value().encode()
    with conn.transaction():
        person = _locked_person(conn, queries, ref)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO identity_suppressed (suppress_hash) VALUES (%s)"
                " ON CONFLICT DO NOTHING",
                [(suppress_hash(secret, n),) for n in person.nodes],
            )
    erased_topics = None
    if topics:
        plain = [ref.partition(":")[2]] if not ref.startswith("cus_") else []
        matcher = PersonMatcher(
            queries.hasher, queries.region, person.nodes, person.ids, plaintext=plain
        )
        erased_topics = erase_from_topics(settings, conn, matcher, wait_s=wait_s,
                                          progress=progress)  # fmt: skip
    lake_rows, lake_files = erase_from_lake(settings.lake_path, person.ids)
    first_ids = set(person.ids)
    with conn.transaction():
        person = _locked_person(conn, queries, person.customer)
        deleted = _delete_rows(conn, person)
    if extra := set(person.ids) - first_ids:  # merged in meanwhile (not by her events)
        more_rows, more_files = erase_from_lake(settings.lake_path, extra)
        lake_rows, lake_files = lake_rows + more_rows, lake_files + more_files
    return ForgetResult(
        person.ids, len(person.nodes), deleted, lake_rows, lake_files, erased_topics
    )


def _locked_person(conn: psycopg.Connection[Any], queries: IdentityQueries, ref: str) -> _Person:
    """Who ``ref`` is, read under the locks every writer of these tables takes."""
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
    return _Person(customer, ids, nodes)


def _delete_rows(conn: psycopg.Connection[Any], person: _Person) -> int:
    ids, nodes, customer = person.ids, person.nodes, person.customer
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
    return deleted


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
