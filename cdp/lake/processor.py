"""The archive processor: resolved events → the Parquet lake, offset-fenced.

Files are written inside the batch's PostgreSQL transaction and the fence commits
after them. A crash in between leaves files above the fence. So before writing, a
batch marks its partitions in ``archive_pending`` (committed on its own) and clears
the marks with the fence; a partition still marked, or never archived, has its files
above the fence discarded before anything else is written there, so a redelivered
batch with different boundaries never duplicates rows. Looking for leftovers walks
the whole lake, which is why it is done only when a mark says there may be some.

Consent: an event whose ``context.consent`` says ``analytics: false`` (Segment's
``categoryPreferences`` shape or a flat ``consent.analytics``) is never written to
the lake. An event that states no consent is archived: the default for sources
without a consent manager; set consent on the source to opt people out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import psycopg

from cdp.config import Settings
from cdp.lake.layout import part_files
from cdp.lake.rows import analytics_consent
from cdp.lake.writer import LakeWriter
from cdp.pipeline import dedup, fence
from cdp.pipeline.records import Record, by_partition
from cdp.pipeline.resolved import read_resolved
from cdp.pipeline.runner import BatchResult
from cdp.store.connect import connect

NAME = "archive"


class ArchiveProcessor:
    name = NAME

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.writer = LakeWriter(settings.lake_path)
        self._own: psycopg.Connection[Any] | None = None  # autocommit, for the marks

    def _own_connection(self) -> psycopg.Connection[Any]:
        if self._own is None or self._own.closed or self._own.broken:
            self._own = connect(self.settings, role=self.settings.db_role_worker, autocommit=True)
        return self._own

    def close(self) -> None:
        if self._own is not None:
            with contextlib.suppress(psycopg.Error):
                self._own.close()
            self._own = None

    def _mark_pending(self, keys: list[tuple[str, int]]) -> set[tuple[str, int]]:
        """Mark the batch's partitions, committed before any file of it is written (see
        the module doc); returns those already marked: an earlier batch did not commit."""
        if not keys:
            return set()
        inserted = (
            self._own_connection()
            .execute(
                "INSERT INTO archive_pending (topic, partition)"
                " SELECT * FROM unnest(%b::text[], %b::int[])"
                " ON CONFLICT (topic, partition) DO NOTHING RETURNING topic, partition",
                _columns(keys),
            )
            .fetchall()
        )
        return set(keys) - {(t, p) for t, p in inserted}

    def _discard_leftovers(
        self, conn: psycopg.Connection[Any], topic: str, partition: int, fence_offset: int | None
    ) -> None:
        """Remove files a crashed batch wrote above the fence.

        Without a fence row there are two cases. A partition never archived: a
        sentinel fence (-1) is committed first, in its own transaction, so files of a
        first batch that never commits are recognised as leftovers. Positions reset by
        an operator (fence rows deleted to reprocess everything) while the lake has
        files: those files are history and stay — the fence restarts at their last
        offset, and the messageId de-duplication keeps reprocessed events from being
        written twice.
        """
        if fence_offset is not None:
            self.writer.discard_uncommitted(partition, fence_offset)
            return
        existing = part_files(self.settings.lake_path, partition)
        if existing:
            conn.execute(
                "INSERT INTO applied_offsets (consumer, topic, partition, last_offset)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (NAME, topic, partition, max(p.last for p in existing)),
            )
        else:
            self._own_connection().execute(
                "INSERT INTO applied_offsets (consumer, topic, partition, last_offset)"
                " VALUES (%s, %s, %s, -1) ON CONFLICT DO NOTHING",
                (NAME, topic, partition),
            )

    def apply(self, conn: psycopg.Connection[Any], records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        fences = fence.load_fences(conn, NAME, records)
        fresh, fenced = fence.split_fenced(fences, records)
        docs = {
            (r.record.topic, r.record.partition, r.record.offset): r.doc
            for r in read_resolved(fresh, NAME, result)
        }
        # an event re-published upstream after a crash arrives again under a new
        # offset: archive each messageId once
        new_ids = dedup.claim_new(
            conn, NAME, (d["event"]["messageId"] for d in docs.values() if d.get("kind") == "event")
        )
        partitions = by_partition(fresh)
        keys = sorted(partitions)
        marked = self._mark_pending(keys)
        for (topic, partition), recs in sorted(partitions.items()):
            fence_offset = fences.get((topic, partition))
            if fence_offset is None or (topic, partition) in marked:
                result.count("leftover_checks")
                self._discard_leftovers(conn, topic, partition, fence_offset)
            batch = []
            for r in recs:
                doc = docs.get((r.topic, r.partition, r.offset), {})  # none: dead-lettered
                if doc.get("kind") != "event":
                    continue
                mid = doc["event"]["messageId"]
                if analytics_consent(doc["event"]) is False:
                    # no analytics consent: never archived (identity and journey still
                    # run: they serve the customer, not analysis)
                    result.count("no_consent")
                elif mid in new_ids:
                    new_ids.discard(mid)
                    batch.append((r.offset, doc))
                else:
                    result.count("duplicates")
            files = self.writer.write_batch(partition, batch)
            result.count("files", len(files))
            result.count("archived", len(batch))
        result.count("fenced", len(fenced))
        fence.advance(conn, NAME, records)
        if keys:
            conn.execute(
                "DELETE FROM archive_pending"
                " WHERE (topic, partition) IN (SELECT * FROM unnest(%b::text[], %b::int[]))",
                _columns(keys),
            )
        return result


def _columns(keys: list[tuple[str, int]]) -> tuple[list[str], list[int]]:
    """(topics, partitions) of ``keys``, as array parameters."""
    return [t for t, _ in keys], [p for _, p in keys]
