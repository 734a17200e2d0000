"""Write-side identity operations behind the CLI: manual merge, split, block,
unblock and the rebuild comparison. Each runs in one transaction under the same
advisory lock as the identity processor, so it never races a worker. A split also
takes the journey's lock (always after the identity lock: nothing takes them in the
other order) and recomputes the journeys of the customers it separates in the same
transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from cdp.activation.split import follow_split
from cdp.config import Settings
from cdp.errors import CDPError
from cdp.identity.graph import IdentityGraph, rebuild
from cdp.identity.model import Merge, Node, Observation
from cdp.identity.processor import LOCK_KEY
from cdp.identity.queries import IdentityQueries
from cdp.identity.rules import MergeRules
from cdp.identity.store import IdentityStore
from cdp.journey import JourneyRules
from cdp.journey import processor as journey_processor
from cdp.journey.recompute import Recomputed, recompute_split


class IdentityAdminError(CDPError):
    pass


@dataclass
class SplitResult:
    merge_id: int
    customers: dict[str, list[str]] = field(default_factory=dict)
    journey: Recomputed = field(default_factory=Recomputed)
    activation: dict[str, int] = field(default_factory=dict)  # rows moved per table


def _nodes_of(conn: psycopg.Connection[Any], customer_id: str) -> list[Node]:
    return [
        Node(t, n)
        for n, t in conn.execute(
            "SELECT node_id, id_type FROM identities WHERE customer_id = %s", (customer_id,)
        )
    ]


def manual_merge(
    conn: psycopg.Connection[Any],
    settings: Settings,
    a: str,
    b: str,
    reason: str,
    force: bool = False,
    rules: MergeRules | None = None,
) -> Merge:
    """Merge two customers by hand. Limits apply unless ``force``; always logged."""
    rules = rules or MergeRules.load()
    queries = IdentityQueries(conn, settings)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        ca, cb = queries.customer_for(a), queries.customer_for(b)
        if ca is None or cb is None:
            raise IdentityAdminError(f"unknown customer: {a if ca is None else b}")
        if ca == cb:
            raise IdentityAdminError(f"{a} and {b} are already the same customer {ca}")
        na, nb = _nodes_of(conn, ca), _nodes_of(conn, cb)
        if force:
            rules = MergeRules(limits={}, other_limit=10**9)
        graph = IdentityGraph.from_clusters({ca: na, cb: nb}, rules)
        link = (min(na), min(nb))
        obs = Observation(f"manual-{uuid.uuid4().hex}", datetime.now(UTC), "manual", link)
        applied = graph.apply(obs)
        if applied.conflicts:
            c = applied.conflicts[0]
            raise IdentityAdminError(
                f"merge refused: the union would exceed the {c.id_type} limit "
                "(use --force to override; it is logged)"
            )
        store = IdentityStore(conn)
        store.load_clusters([n.node_id for n in na + nb])
        (merge_id,) = store.write(graph, [], applied.merges, [obs])
        conn.execute(
            "UPDATE merges SET reason = %s WHERE merge_id = %s",
            (f"manual{' forced' if force else ''}: {reason}", merge_id),
        )
        return applied.merges[0]


def split(
    conn: psycopg.Connection[Any],
    merge_id: int,
    rules: MergeRules | None = None,
    journey_rules: JourneyRules | None = None,
) -> SplitResult:
    """Revert one merge: recompute the cluster from its evidence without the merge's
    linking event, in event-time order (so links that came after are re-evaluated),
    then recompute the journey of every customer of the cluster from its own events
    (:func:`cdp.journey.recompute.recompute_split`) and move activation's timers and
    decisions with their events (:func:`cdp.activation.split.follow_split`), all in one
    transaction."""
    rules = rules or MergeRules.load()
    journey_rules = journey_rules or JourneyRules.load()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        journey_processor.lock(conn)  # no journey batch interleaves with the split
        row = conn.execute(
            "SELECT winner, message_id, split_at FROM merges WHERE merge_id = %s", (merge_id,)
        ).fetchone()
        if row is None:
            raise IdentityAdminError(f"no merge {merge_id}")
        winner, message_id, split_at = row
        if split_at is not None:
            raise IdentityAdminError(f"merge {merge_id} was already split at {split_at}")
        redirect = conn.execute(
            "SELECT customer_id FROM customer_redirects WHERE old_id = %s", (winner,)
        ).fetchone()
        current = redirect[0] if redirect else winner
        members = _nodes_of(conn, current)
        former = {current} | {
            r[0]
            for r in conn.execute(
                "SELECT old_id FROM customer_redirects WHERE customer_id = %s", (current,)
            )
        }
        node_type = {n.node_id: n.id_type for n in members}
        excluded = excluded_messages(conn) | {message_id}
        observations = [
            Observation(mid, at, ch, tuple(Node(node_type[n], n) for n in nodes if n in node_type))
            for mid, at, ch, nodes in conn.execute(
                "SELECT message_id, event_time, channel, nodes FROM identity_links"
                " WHERE nodes && %s",
                ([n.node_id for n in members],),
            )
        ]
        graph = rebuild(observations, excluded, rules)
        for node in members:  # identifiers never linked to anything stay on their own
            if graph.customer_of(node.node_id) is None:
                graph.apply(Observation(f"single-{node.node_id}", datetime.min.replace(tzinfo=UTC),
                                        "rebuild", (node,)))  # fmt: skip
        clusters = graph.clusters()
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE identities SET customer_id = %s WHERE node_id = %s",
                [(cid, n.node_id) for cid, nodes in clusters.items() for n in nodes],
            )
            live = sorted(clusters)
            cur.execute("DELETE FROM customer_redirects WHERE old_id = ANY(%s)", (live,))
            cur.executemany(
                "INSERT INTO customers (customer_id, anchor_node) VALUES (%s, %s)"
                " ON CONFLICT (customer_id) DO UPDATE SET merged_into = NULL",
                [(cid, min(n.node_id for n in nodes)) for cid, nodes in clusters.items()],
            )
            cur.execute("UPDATE merges SET split_at = now() WHERE merge_id = %s", (merge_id,))
        journey = recompute_split(
            conn,
            journey_rules,
            nodes=[n.node_id for n in members],
            customer_ids=former,
            live=live,
            fallback=current if current in clusters or not live else live[0],
            cause=f"split:{merge_id}",
        )
        activation = follow_split(conn, former | set(live))
        return SplitResult(
            merge_id,
            {cid: sorted(n.id_type for n in nodes) for cid, nodes in clusters.items()},
            journey,
            activation,
        )


def block(conn: psycopg.Connection[Any], queries: IdentityQueries, spec: str, reason: str) -> str:
    node = queries.node_id(spec)
    if node is None:
        raise IdentityAdminError(f"{spec} is not a usable identifier value")
    id_type = spec.partition(":")[0]
    conn.execute(
        "INSERT INTO identity_blocklist (node_id, id_type, reason) VALUES (%s, %s, %s)"
        " ON CONFLICT (node_id) DO UPDATE SET reason = EXCLUDED.reason",
        (node, id_type, reason),
    )
    return node


def unblock(conn: psycopg.Connection[Any], queries: IdentityQueries, spec: str) -> bool:
    node = queries.node_id(spec)
    cur = conn.execute("DELETE FROM identity_blocklist WHERE node_id = %s", (node,))
    return cur.rowcount > 0


def compare_with_live(conn: psycopg.Connection[Any], graph: IdentityGraph) -> list[dict[str, Any]]:
    """Every identifier whose customer differs between ``graph`` and the database."""
    live = dict(conn.execute("SELECT node_id, customer_id FROM identities").fetchall())
    expected = {n.node_id: cid for cid, nodes in graph.clusters().items() for n in nodes}
    diffs = []
    for node in sorted(set(live) | set(expected)):
        if live.get(node) != expected.get(node):
            diffs.append({"node_id": node, "live": live.get(node), "rebuild": expected.get(node)})
    return diffs


def excluded_messages(conn: psycopg.Connection[Any]) -> set[str]:
    return {
        r[0]
        for r in conn.execute(
            "SELECT message_id FROM merges WHERE split_at IS NOT NULL AND message_id IS NOT NULL"
        )
    }


def manual_links(
    conn: psycopg.Connection[Any], node_types: dict[str, str]
) -> Iterable[Observation]:
    """Manual merges recorded as evidence (channel ``manual``), for the rebuild."""
    for mid, at, ch, nodes in conn.execute(
        "SELECT message_id, event_time, channel, nodes FROM identity_links WHERE channel = 'manual'"
    ):
        yield Observation(
            mid, at, ch, tuple(Node(node_types.get(n, n.split(":")[0]), n) for n in nodes)
        )
