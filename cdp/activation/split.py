"""Activation after ``cdp identity split``: pending timers, cancelling events and
decided actions go to the customer their event belongs to now.

Runs inside the split's transaction, after the journey's recomputation has moved
each ``journey_events`` row to the customer its identifier is in after the split, and
under the actions lock (taken after the identity and journey locks, as forget does).
A timer or a cancel follows its event's messageId; a decision follows its trigger's
(so frequency caps count the right person). Transition triggers (e.g. winback) are
not events and stay. The folded facts in ``activation_profiles`` (first
identification, latest consent, touchpoint counts) cannot be taken apart and stay on
the customer they were folded into: a split-off customer without a profile of their
own counts as not identified until their next event (fails closed for marketing).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import psycopg

from cdp.activation.processor import lock

_FOLLOW = {
    "activation_timers": "trigger_message_id",
    "activation_cancels": "message_id",
    "activation_actions": "trigger_message_id",
}


def follow_split(conn: psycopg.Connection[Any], customer_ids: Collection[str]) -> dict[str, int]:
    """Re-key the activation rows of ``customer_ids`` (every id of the split's
    component, before and after) by their events' current customers; returns the rows
    moved per table."""
    lock(conn)
    ids = sorted(set(customer_ids))
    moved = {}
    for table, message_column in _FOLLOW.items():
        moved[table] = conn.execute(
            f"UPDATE {table} t SET customer_id = e.customer_id FROM journey_events e"
            f" WHERE e.message_id = t.{message_column} AND t.customer_id = ANY(%b)"
            "  AND e.customer_id IS DISTINCT FROM t.customer_id",
            (ids,),
        ).rowcount
    return moved
