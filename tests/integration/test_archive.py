"""The archive processor: consent, de-duplication and crash leftovers."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson

from cdp.config import Settings
from cdp.lake.layout import part_files
from cdp.lake.processor import ArchiveProcessor
from cdp.pipeline.records import Record
from cdp.pipeline.runner import BatchRunner
from cdp.store.connect import connect
from tests.chaos.harness import lake_counts


def resolved(settings: Settings, offset: int, mid: str, **context: Any) -> Record:
    event = {
        "messageId": mid, "type": "track", "event": "Product Viewed", "channel": "web",
        "timestamp": "2026-03-01T10:00:00Z", "anonymousId": "a", "context": context,
    }  # fmt: skip
    value = orjson.dumps({"kind": "event", "customer_id": "cus_1", "event": event})
    return Record(settings.topic("touchpoints.resolved"), 0, offset, b"cus_1", value)


def test_consent_dedup_and_leftovers(settings: Settings, topics: dict[str, str], db: Any) -> None:
    no = {"consent": {"categoryPreferences": {"analytics": False, "marketing": True}}}
    yes = {"consent": {"categoryPreferences": {"analytics": True}}}
    batch = [
        resolved(settings, 0, "m0", **yes),
        resolved(settings, 1, "m1"),  # no consent stated: archived (documented default)
        resolved(settings, 2, "m2", **no),  # opted out: never in the lake
        resolved(settings, 3, "m0", **yes),  # re-published upstream after a crash
    ]
    runner = BatchRunner(settings, ArchiveProcessor(settings))
    result = runner.run(batch)
    assert result.stats["no_consent"] == 1 and result.stats["duplicates"] == 1
    assert lake_counts(settings) == (2, 2)

    # a crash after writing files but before the commit leaves files above the fence
    # (and the partition's mark); the next batch of that partition removes them first
    conn, crashing = connect(settings), ArchiveProcessor(settings)
    with contextlib.suppress(Crash), conn.transaction():
        crashing.apply(conn, [resolved(settings, 9, "m9")])
        raise Crash
    conn.close()
    crashing.close()
    assert lake_counts(settings) == (3, 3)
    assert db.execute("SELECT count(*) FROM archive_pending").fetchone() == (1,)
    again = runner.run([resolved(settings, 4, "m4")])
    assert again.stats.get("leftover_checks") == 1
    assert lake_counts(settings) == (3, 3)  # m0, m1, m4: the uncommitted m9 is gone
    assert all(p.first <= 4 for p in part_files(settings.lake_path))
    assert db.execute("SELECT count(*) FROM archive_pending").fetchone() == (0,)
    # a committed batch leaves no mark: the next one does not walk the lake
    assert "leftover_checks" not in runner.run([resolved(settings, 5, "m5")]).stats
    assert lake_counts(settings) == (4, 4)
    runner.close()


class Crash(Exception):
    """The process dies between the batch's files and its commit."""
