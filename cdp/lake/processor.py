"""The archive processor: resolved events → the Parquet lake, offset-fenced.

Files are written inside the batch's PostgreSQL transaction and the fence commits
after them. A crash in between leaves files above the fence; before writing, each
batch discards what its partition wrote above the fence, so a redelivered batch with
different boundaries never duplicates rows.

Consent: an event whose ``context.consent`` says ``analytics: false`` (Segment's
``categoryPreferences`` shape or a flat ``consent.analytics``) is never written to
the lake. An event that states no consent is archived: the default for sources
without a consent manager; set consent on the source to opt people out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

from cdp.config import Settings
from cdp.lake.layout import part_files
from cdp.lake.rows import analytics_consent
from cdp.lake.writer import LakeWriter
from cdp.pipeline import dedup, fence
from cdp.pipeline.records import Record, by_partition
from cdp.pipeline.runner import BatchResult
from cdp.store.connect import connection

NAME = "archive"


class ArchiveProcessor:
    name = NAME

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.writer = LakeWriter(settings.lake_path)

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
            with connection(self.settings, autocommit=True) as own:
                own.execute(
                    "INSERT INTO applied_offsets (consumer, topic, partition, last_offset)"
                    " VALUES (%s, %s, %s, -1) ON CONFLICT DO NOTHING",
                    (NAME, topic, partition),
                )

    def apply(self, conn: psycopg.Connection[Any], records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        fences = fence.load_fences(conn, NAME, records)
        fresh, fenced = fence.split_fenced(fences, records)
        docs = {(r.topic, r.partition, r.offset): orjson.loads(r.value) for r in fresh}
        # an event re-published upstream after a crash arrives again under a new
        # offset: archive each messageId once
        new_ids = dedup.claim_new(
            conn, NAME, (d["event"]["messageId"] for d in docs.values() if d.get("kind") == "event")
        )
        for (topic, partition), recs in sorted(by_partition(fresh).items()):
            self._discard_leftovers(conn, topic, partition, fences.get((topic, partition)))
            batch = []
            for r in recs:
                doc = docs[(r.topic, r.partition, r.offset)]
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
        return result
