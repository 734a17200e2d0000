"""Offset fences: the last offset a processor applied per (topic, partition), stored
in the same transaction as the state it produced. A record at or below its fence was
applied already; a redelivery of it changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from cdp.pipeline.records import Record


def load_fences(
    conn: psycopg.Connection[Any], consumer: str, records: Sequence[Record]
) -> dict[tuple[str, int], int]:
    topics = sorted({r.topic for r in records})
    rows = conn.execute(
        "SELECT topic, partition, last_offset FROM applied_offsets"
        " WHERE consumer = %s AND topic = ANY(%b)",
        (consumer, topics),
    ).fetchall()
    return {(t, p): o for t, p, o in rows}


def split_fenced(
    fences: dict[tuple[str, int], int], records: Sequence[Record]
) -> tuple[list[Record], list[Record]]:
    """(records not yet applied, records at or below their fence)."""
    fresh: list[Record] = []
    fenced: list[Record] = []
    for rec in records:
        if rec.offset <= fences.get((rec.topic, rec.partition), -1):
            fenced.append(rec)
        else:
            fresh.append(rec)
    return fresh, fenced


def top_offsets(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    """The greatest offset in ``records`` per (topic, partition)."""
    top: dict[tuple[str, int], int] = {}
    for rec in records:
        key = (rec.topic, rec.partition)
        top[key] = max(top.get(key, -1), rec.offset)
    return top


def advance(conn: psycopg.Connection[Any], consumer: str, records: Sequence[Record]) -> None:
    """Move each partition's fence to the greatest offset in ``records``."""
    top = top_offsets(records)
    if not top:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO applied_offsets (consumer, topic, partition, last_offset)"
            " VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (consumer, topic, partition) DO UPDATE"
            " SET last_offset = GREATEST(applied_offsets.last_offset, EXCLUDED.last_offset),"
            "     updated_at = now()",
            [(consumer, t, p, o) for (t, p), o in sorted(top.items())],
        )


def mark_published(conn: psycopg.Connection[Any], consumer: str, records: Sequence[Record]) -> None:
    """Record that the outputs of ``records`` are on Kafka (after the flush)."""
    top = top_offsets(records)
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE applied_offsets"
            " SET published_offset = GREATEST(COALESCE(published_offset, -1), %s)"
            " WHERE consumer = %s AND topic = %s AND partition = %s",
            [(o, consumer, t, p) for (t, p), o in sorted(top.items())],
        )
