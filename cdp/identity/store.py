"""The identity graph in PostgreSQL: load the part of the graph a batch touches, write
back what changed. Called inside the identity processor's transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from cdp.identity.graph import IdentityGraph
from cdp.identity.model import Conflict, Merge, Node, Observation


@dataclass(frozen=True, slots=True)
class NodeSighting:
    node: Node
    masked: str
    event_time: datetime
    channel: str


@dataclass(slots=True)
class _Seen:
    masked: str
    first: datetime
    last: datetime
    first_channel: str
    last_channel: str

    def add(self, s: NodeSighting) -> None:
        if s.event_time < self.first:
            self.first, self.first_channel = s.event_time, s.channel
        if s.event_time >= self.last:
            self.last, self.last_channel = s.event_time, s.channel


class IdentityStore:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._loaded: dict[str, str] = {}
        self._conflicts: list[Conflict] = []

    # -- reads ------------------------------------------------------------------
    def blocked(self, node_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(node_ids))
        if not ids:
            return set()
        rows = self.conn.execute(
            "SELECT node_id FROM identity_blocklist WHERE node_id = ANY(%s)", (ids,)
        ).fetchall()
        return {r[0] for r in rows}

    def load_clusters(self, node_ids: Iterable[str]) -> dict[str, list[Node]]:
        """Every member of every customer that owns one of ``node_ids``."""
        ids = sorted(set(node_ids))
        if not ids:
            return {}
        rows = self.conn.execute(
            "SELECT node_id, id_type, customer_id FROM identities WHERE customer_id IN"
            " (SELECT customer_id FROM identities WHERE node_id = ANY(%s))",
            (ids,),
        ).fetchall()
        clusters: dict[str, list[Node]] = {}
        for node_id, id_type, customer_id in rows:
            clusters.setdefault(customer_id, []).append(Node(id_type, node_id))
            self._loaded[node_id] = customer_id
        return clusters

    def customers_of(self, node_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(node_ids))
        if not ids:
            return {}
        rows = self.conn.execute(
            "SELECT node_id, customer_id FROM identities WHERE node_id = ANY(%s)", (ids,)
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    # -- writes -----------------------------------------------------------------
    def add_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        self._conflicts.extend(conflicts)

    def count_dropped(self, dropped: Counter[str]) -> None:
        if not dropped:
            return
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO identity_counters (reason, count) VALUES (%s, %s)"
                " ON CONFLICT (reason) DO UPDATE"
                " SET count = identity_counters.count + EXCLUDED.count",
                sorted(dropped.items()),
            )

    def write(
        self,
        graph: IdentityGraph,
        sightings: Sequence[NodeSighting],
        merges: Sequence[Merge],
        observations: Sequence[Observation],
    ) -> list[int]:
        """Write the changed part of the graph; returns the new merge ids in order."""
        seen: dict[Node, _Seen] = {}
        for s in sightings:
            cur_seen = seen.get(s.node)
            if cur_seen is None:
                seen[s.node] = _Seen(s.masked, s.event_time, s.event_time, s.channel, s.channel)
            else:
                cur_seen.add(s)
        final = {n.node_id: cid for cid, nodes in graph.clusters().items() for n in nodes}

        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO identities (node_id, id_type, customer_id, masked, first_seen,"
                " last_seen, first_channel, last_channel) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (node_id) DO UPDATE SET customer_id = EXCLUDED.customer_id,"
                " first_channel = CASE WHEN EXCLUDED.first_seen < identities.first_seen"
                "   THEN EXCLUDED.first_channel ELSE identities.first_channel END,"
                " last_channel = CASE WHEN EXCLUDED.last_seen >= identities.last_seen"
                "   THEN EXCLUDED.last_channel ELSE identities.last_channel END,"
                " first_seen = LEAST(identities.first_seen, EXCLUDED.first_seen),"
                " last_seen = GREATEST(identities.last_seen, EXCLUDED.last_seen)",
                [
                    (n.node_id, n.id_type, final[n.node_id], s.masked, s.first, s.last,
                     s.first_channel, s.last_channel)
                    for n, s in sorted(seen.items(), key=lambda kv: kv[0].node_id)
                ],
            )  # fmt: skip
            sighted = {n.node_id for n in seen}
            moved = [
                (final[nid], nid)
                for nid, old in sorted(self._loaded.items())
                if final.get(nid, old) != old and nid not in sighted
            ]
            if moved:
                cur.executemany("UPDATE identities SET customer_id = %s WHERE node_id = %s", moved)

            touched: dict[str, tuple[datetime, datetime]] = {}
            for n, agg in seen.items():
                cid = final[n.node_id]
                lo, hi = touched.get(cid, (agg.first, agg.last))
                touched[cid] = (min(lo, agg.first), max(hi, agg.last))
            anchors = {
                cid: min(n.node_id for n in nodes) for cid, nodes in graph.clusters().items()
            }
            cur.executemany(
                "INSERT INTO customers (customer_id, anchor_node, first_seen, last_seen)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (customer_id) DO UPDATE SET"
                " first_seen = LEAST(customers.first_seen, EXCLUDED.first_seen),"
                " last_seen = GREATEST(customers.last_seen, EXCLUDED.last_seen),"
                " merged_into = NULL",
                [(cid, anchors[cid], lo, hi) for cid, (lo, hi) in sorted(touched.items())],
            )

            merge_ids: list[int] = []
            for m in merges:
                winner = graph.customer_of(m.linking_node_id) or m.winner
                cur.execute(
                    "INSERT INTO merges (winner, loser, linking_node, linking_type, message_id,"
                    " event_time) VALUES (%s,%s,%s,%s,%s,%s) RETURNING merge_id",
                    (m.winner, m.loser, m.linking_node_id, m.linking_type, m.message_id,
                     m.event_time),
                )  # fmt: skip
                row = cur.fetchone()
                assert row is not None
                merge_ids.append(int(row[0]))
                cur.execute(
                    "INSERT INTO customers (customer_id, anchor_node, merged_into)"
                    " VALUES (%s, '', %s) ON CONFLICT (customer_id) DO UPDATE"
                    " SET merged_into = EXCLUDED.merged_into",
                    (m.loser, winner),
                )
                cur.execute(
                    "INSERT INTO customer_redirects (old_id, customer_id, merge_id)"
                    " VALUES (%s, %s, %s) ON CONFLICT (old_id) DO UPDATE"
                    " SET customer_id = EXCLUDED.customer_id, merge_id = EXCLUDED.merge_id",
                    (m.loser, winner, merge_ids[-1]),
                )
                cur.execute(
                    "UPDATE customer_redirects SET customer_id = %s WHERE customer_id = %s",
                    (winner, m.loser),
                )

            if self._conflicts:
                cur.executemany(
                    "INSERT INTO conflicts (customer_a, customer_b, id_type, node_id, message_id,"
                    " event_time, reason) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                    [(c.customer_a, c.customer_b, c.id_type, c.node_id, c.message_id,
                      c.event_time, c.reason) for c in self._conflicts],
                )  # fmt: skip
            links = [o for o in observations if len(o.nodes) >= 2 or o.alias_previous]
            if links:
                cur.executemany(
                    "INSERT INTO identity_links (message_id, event_time, channel, nodes)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING",
                    [(o.message_id, o.event_time, o.channel, o.touched_node_ids())
                     for o in links],
                )  # fmt: skip
        return merge_ids
