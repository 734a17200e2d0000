"""De-duplication by ``messageId`` within a window, stored in PostgreSQL so it
survives restarts. Claiming happens in the processor's transaction: a rolled-back
batch claims nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg


def claim_new(conn: psycopg.Connection[Any], consumer: str, message_ids: Iterable[str]) -> set[str]:
    """Record ``message_ids`` as seen; returns the ones not seen before."""
    ids = sorted(set(message_ids))
    if not ids:
        return set()
    rows = conn.execute(
        "INSERT INTO seen_messages (consumer, message_id)"
        " SELECT %s, unnest(%b::text[])"
        " ON CONFLICT (consumer, message_id) DO NOTHING RETURNING message_id",
        (consumer, ids),
    ).fetchall()
    return {r[0] for r in rows}


def purge(conn: psycopg.Connection[Any], window_s: int) -> int:
    """Forget messageIds older than the window; returns how many rows went."""
    cur = conn.execute(
        "DELETE FROM seen_messages WHERE seen_at < now() - make_interval(secs => %s)",
        (window_s,),
    )
    return cur.rowcount
