"""Read side of activation (``cdp actions list | stats``) and replay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import psycopg


def list_actions(
    conn: psycopg.Connection[Any],
    rule: str | None = None,
    outcome: str | None = "fired",
    limit: int = 50,
) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT a.action_id, a.rule, a.action, a.customer_id, a.trigger_message_id,"
        " a.trigger_at, a.due_at, a.deferred, a.outcome, a.decided_at,"
        " COALESCE((SELECT jsonb_object_agg(d.destination, d.status)"
        "   FROM activation_deliveries d WHERE d.action_id = a.action_id), '{}'::jsonb)"
        " FROM activation_actions a"
        " WHERE (%(rule)s::text IS NULL OR a.rule = %(rule)s)"
        "   AND (%(outcome)s::text IS NULL OR a.outcome = %(outcome)s)"
        " ORDER BY a.due_at DESC, a.action_id LIMIT %(limit)s",
        {"rule": rule, "outcome": outcome, "limit": limit},
    ).fetchall()
    keys = ("action_id", "rule", "action", "customer_id", "trigger_message_id", "trigger_at",
            "due_at", "deferred", "outcome", "decided_at", "deliveries")  # fmt: skip
    return [dict(zip(keys, r, strict=True)) for r in rows]


def stats(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    by_rule: dict[str, dict[str, int]] = {}
    for rule, outcome, n in conn.execute(
        "SELECT rule, outcome, count(*) FROM activation_actions GROUP BY 1, 2 ORDER BY 1, 2"
    ):
        by_rule.setdefault(rule, {})[outcome] = n
    for rule, n in conn.execute(
        "SELECT rule, count(*) FROM activation_actions WHERE deferred AND outcome = 'fired'"
        " GROUP BY 1"
    ):
        by_rule.setdefault(rule, {})["deferred_quiet_hours"] = n
    for rule, n in conn.execute("SELECT rule, count(*) FROM activation_timers GROUP BY 1"):
        by_rule.setdefault(rule, {})["pending"] = n
    deliveries: dict[str, dict[str, int]] = {}
    for dest, status, n in conn.execute(
        "SELECT destination, status, count(*) FROM activation_deliveries GROUP BY 1, 2"
    ):
        deliveries.setdefault(dest, {})[status] = n
    wm = conn.execute("SELECT event_time FROM watermarks WHERE consumer = 'actions'").fetchone()
    totals: dict[str, int] = {}
    for outcomes in by_rule.values():
        for k, v in outcomes.items():
            totals[k] = totals.get(k, 0) + v
    return {
        "watermark": wm[0] if wm else None,
        "rules": by_rule,
        "totals": totals,
        "deliveries": deliveries,
        "delivered": sum(d.get("delivered", 0) for d in deliveries.values()),
        "failed": sum(d.get("dead", 0) for d in deliveries.values()),
    }


def replay_rows(
    conn: psycopg.Connection[Any], action_id: str | None, since: datetime | None
) -> list[tuple[str, str, bytes]]:
    """Fired actions to re-deliver: (customer_id, action, value); their webhook
    deliveries are put back to ``pending`` with a fresh attempt budget."""
    rows = conn.execute(
        "SELECT action_id, customer_id, action, payload FROM activation_actions"
        " WHERE outcome = 'fired' AND (%(id)s::text IS NULL OR action_id = %(id)s)"
        "   AND (%(since)s::timestamptz IS NULL OR decided_at >= %(since)s)"
        " ORDER BY due_at, action_id",
        {"id": action_id, "since": since},
    ).fetchall()
    ids = [r[0] for r in rows]
    if ids:
        conn.execute(
            "UPDATE activation_deliveries SET status = 'pending', attempts = 0,"
            " next_attempt_at = now(), updated_at = now() WHERE action_id = ANY(%s)",
            (ids,),
        )
    return [(p.get("customer_id", cid), action, orjson.dumps(p)) for _, cid, action, p in rows]
