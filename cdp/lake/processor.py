"""The archive processor: resolved events → the Parquet lake, offset-fenced.

Files are written inside the batch's PostgreSQL transaction and the fence commits
after them. A crash in between leaves files above the fence; before writing, each
batch discards what its partition wrote above the fence, so a redelivered batch with
different boundaries never duplicates rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

from cdp.config import Settings
from cdp.lake.writer import LakeWriter
from cdp.pipeline import dedup, fence
from cdp.pipeline.records import Record, by_partition
from cdp.pipeline.runner import BatchResult

NAME = "archive"


class ArchiveProcessor:
    name = NAME

    def __init__(self, settings: Settings) -> None:
        self.writer = LakeWriter(settings.lake_path)

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
            self.writer.discard_uncommitted(partition, fences.get((topic, partition), -1))
            batch = []
            for r in recs:
                doc = docs[(r.topic, r.partition, r.offset)]
                if doc.get("kind") != "event":
                    continue
                mid = doc["event"]["messageId"]
                if mid in new_ids:
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
