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
    """Per partition of ``records``: the last offset applied (its fence)."""
    return _load(conn, consumer, records, "last_offset")


def load_published(
    conn: psycopg.Connection[Any], consumer: str, records: Sequence[Record]
) -> dict[tuple[str, int], int]:
    """Per partition: the last offset applied *with its outputs on Kafka* (the lesser
    of the fence and ``published_offset``; -1 when nothing was published yet).

    A batch must be complete from here on (:func:`holes`), not only from the fence:
    a worker killed between its commit and its publish leaves records applied but not
    published, and the consumer group can commit past them (Faust acknowledges the
    messages it skips around a rebalance, and with no earlier commit on the partition
    nothing stops the commit from passing a batch still in flight). Read back, they
    are fenced, so the processor re-publishes their outputs instead of applying them.
    """
    return _load(conn, consumer, records, "LEAST(last_offset, COALESCE(published_offset, -1))")


def _load(
    conn: psycopg.Connection[Any], consumer: str, records: Sequence[Record], position: str
) -> dict[tuple[str, int], int]:
    """``position`` (an SQL expression, never user input) per partition of ``records``."""
    topics = sorted({r.topic for r in records})
    rows = conn.execute(
        f"SELECT topic, partition, {position} FROM applied_offsets"
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


def holes(
    fences: dict[tuple[str, int], int],
    records: Sequence[Record],
    checked: dict[tuple[str, int], int] | None = None,
) -> dict[tuple[str, int], tuple[int | None, int]]:
    """Partitions where ``records`` do not continue exactly where ``fences`` left off.

    Advancing a fence to a batch's greatest offset claims every offset below it was
    applied, so a batch must hold every record between its partition's fence and its
    greatest offset. A consumer that skipped records (a client bug, a reset or seek
    past them) breaks that silently; this finds it. The batch runner passes the
    published positions (:func:`load_published`), so that records applied but never
    published are found the same way. Per such partition: (first offset the batch
    should start at, or None when there is no fence yet and the batch does not start
    at offset 0; the batch's greatest offset). ``checked`` holds, per partition, the
    offset up to which Kafka was read and found to have no other records (control
    records, compaction): offsets up to there are not holes.
    """
    offsets: dict[tuple[str, int], list[int]] = {}
    for rec in records:
        offsets.setdefault((rec.topic, rec.partition), []).append(rec.offset)
    out: dict[tuple[str, int], tuple[int | None, int]] = {}
    for key, found in offsets.items():
        fence = fences.get(key)
        verified = (checked or {}).get(key, -1)
        fresh = sorted({o for o in found if fence is None or o > fence})
        if not fresh:
            continue
        expected = 0 if fence is None else fence + 1
        for offset in fresh:
            if offset > expected and offset - 1 > verified:
                out[key] = (None if fence is None else fence + 1, fresh[-1])
                break
            expected = offset + 1
    return out


def describe(positions: dict[tuple[str, int], int], records: Sequence[Record]) -> str:
    """One line for the log: per partition, its position and the batch's offsets
    (``web[2] @41 42-97/56``: position 41, offsets 42 to 97, 56 records)."""
    offsets: dict[tuple[str, int], list[int]] = {}
    for rec in records:
        offsets.setdefault((rec.topic, rec.partition), []).append(rec.offset)
    return " ".join(
        f"{t}[{p}] @{positions.get((t, p), '-')} {min(o)}-{max(o)}/{len(o)}"
        for (t, p), o in sorted(offsets.items())
    )


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
