"""Read-side queries of the identity graph, shared by the CLI and the profile API.

Identifiers given as ``TYPE:VALUE`` are normalised and hashed exactly as the stream
does, so a lookup never needs plaintext in the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from cdp.config import Settings
from cdp.errors import CDPError
from cdp.identity.hashing import IdentifierHasher
from cdp.identity.normalize import normalize


class LookupError_(CDPError):
    pass


class IdentityQueries:
    def __init__(self, conn: psycopg.Connection[Any], settings: Settings) -> None:
        self.conn = conn
        self.hasher = IdentifierHasher(settings.identity_secret.get_secret_value().encode())
        self.region = settings.default_phone_region

    def node_id(self, spec: str) -> str | None:
        """``TYPE:VALUE`` → node id; None when the value is unusable for that type."""
        id_type, sep, value = spec.partition(":")
        if not sep or not id_type or not value:
            raise LookupError_(f"expected TYPE:VALUE (e.g. email:ann@example.nl), got {spec!r}")
        norm = normalize(id_type, value, self.region)
        return self.hasher.node_id(id_type, norm) if norm is not None else None

    def current(self, customer_id: str) -> str:
        row = self.conn.execute(
            "SELECT customer_id FROM customer_redirects WHERE old_id = %s", (customer_id,)
        ).fetchone()
        return str(row[0]) if row else customer_id

    def customer_for(self, ref: str) -> str | None:
        """A customer id (followed through merges) or ``TYPE:VALUE`` → customer id."""
        if ref.startswith("cus_"):
            cid = self.current(ref)
            hit = self.conn.execute(
                "SELECT 1 FROM identities WHERE customer_id = %s LIMIT 1", (cid,)
            ).fetchone()
            return cid if hit else None
        node = self.node_id(ref)
        if node is None:
            return None
        row = self.conn.execute(
            "SELECT customer_id FROM identities WHERE node_id = %s", (node,)
        ).fetchone()
        return str(row[0]) if row else None

    def resolve_many(self, specs: Iterable[str]) -> dict[str, str | None]:
        """Bulk ``TYPE:VALUE`` → customer id, one query per chunk."""
        nodes: dict[str, str | None] = {}
        for spec in specs:
            try:
                nodes[spec] = self.node_id(spec)
            except LookupError_:
                nodes[spec] = None
        ids = sorted({n for n in nodes.values() if n})
        found: dict[str, str] = {}
        for i in range(0, len(ids), 5000):
            rows = self.conn.execute(
                "SELECT node_id, customer_id FROM identities WHERE node_id = ANY(%s)",
                (ids[i : i + 5000],),
            ).fetchall()
            found.update({r[0]: r[1] for r in rows})
        return {spec: found.get(n) if n else None for spec, n in nodes.items()}

    def profile(self, customer_id: str) -> dict[str, Any]:
        idents = [
            {"type": t, "value": m, "first_seen": f, "last_seen": la, "first_channel": fc,
             "last_channel": lc}
            for t, m, f, la, fc, lc in self.conn.execute(
                "SELECT id_type, masked, first_seen, last_seen, first_channel, last_channel"
                " FROM identities WHERE customer_id = %s ORDER BY id_type, first_seen",
                (customer_id,),
            )
        ]  # fmt: skip
        channels = sorted(
            {i["first_channel"] for i in idents} | {i["last_channel"] for i in idents}
        )
        journey = self.conn.execute(
            "SELECT stage, stage_since, cart, cart_value, summary, flags, last_event_at,"
            " last_channel FROM journey WHERE customer_id = %s",
            (customer_id,),
        ).fetchone()
        out: dict[str, Any] = {
            "customer_id": customer_id,
            "identifiers": idents,
            "channels": channels,
            "stage": None,
        }
        if journey:
            stage, since, cart, value, summary, flags, last_at, last_ch = journey
            out.update(
                stage=stage, stage_since=since, cart=cart, cart_value=value, flags=flags,
                last_event_at=last_at, last_channel=last_ch,
                last_touchpoints={
                    ch: {"at": t[0], "message_id": t[1], "event": t[2]}
                    for ch, t in (summary.get("touch") or {}).items()
                },
                channels=sorted(set(channels) | set(summary.get("channels", []))),
            )  # fmt: skip
        return out

    def history(self, customer_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT merge_id, winner, loser, linking_type, message_id, event_time, reason,"
            " created_at, split_at FROM merges WHERE winner = %s OR loser = %s"
            " OR winner IN (SELECT old_id FROM customer_redirects WHERE customer_id = %s)"
            " ORDER BY merge_id",
            (customer_id, customer_id, customer_id),
        ).fetchall()
        keys = ("merge_id", "winner", "loser", "linking_type", "message_id", "event_time",
                "reason", "created_at", "split_at")  # fmt: skip
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def conflicts(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT conflict_id, customer_a, customer_b, id_type, message_id, event_time, reason"
            " FROM conflicts ORDER BY conflict_id DESC LIMIT %s",
            (limit,),
        ).fetchall()
        keys = ("conflict_id", "customer_a", "customer_b", "id_type", "message_id",
                "event_time", "reason")  # fmt: skip
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def stats(self, top: int = 10) -> dict[str, Any]:
        c = self.conn
        customers = c.execute("SELECT count(DISTINCT customer_id) FROM identities").fetchone()
        per_type = dict(
            c.execute("SELECT id_type, count(*) FROM identities GROUP BY 1 ORDER BY 1").fetchall()
        )
        sizes = dict(c.execute(
            "SELECT n, count(*) FROM (SELECT count(*) AS n FROM identities GROUP BY customer_id) s"
            " GROUP BY n ORDER BY n").fetchall())  # fmt: skip
        largest = [
            {"customer_id": cid, "identifiers": n}
            for cid, n in c.execute(
                "SELECT customer_id, count(*) FROM identities GROUP BY 1 ORDER BY 2 DESC, 1"
                " LIMIT %s", (top,))
        ]  # fmt: skip
        merges = c.execute("SELECT count(*) FROM merges WHERE split_at IS NULL").fetchone()
        conflicts = c.execute("SELECT count(*) FROM conflicts").fetchone()
        dropped = dict(c.execute("SELECT reason, count FROM identity_counters").fetchall())
        return {
            "customers": customers[0] if customers else 0,
            "identifiers_per_type": per_type,
            "cluster_sizes": {str(k): v for k, v in sizes.items()},
            "largest_clusters": largest,
            "merges": merges[0] if merges else 0,
            "conflicts": conflicts[0] if conflicts else 0,
            "ignored_identifier_values": dropped,
        }
