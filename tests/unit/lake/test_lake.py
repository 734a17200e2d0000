"""LakeWriter and compaction: naming, atomicity, idempotence, crash leftovers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdp.config import Settings
from cdp.lake import SCHEMA, LakeWriter, compact, layout


def rec(mid: str, channel: str = "web", day: int = 1, cid: str = "cus_1") -> dict[str, Any]:
    return {
        "kind": "event",
        "customer_id": cid,
        "event": {
            "messageId": mid,
            "type": "track",
            "channel": channel,
            "event": "Order Completed",
            "timestamp": f"2026-03-{day:02d}T23:30:00-02:00",
            "userId": "secret-user",
            "identifiers": {"email": "ann@example.nl"},
            "traits": {"phone": "+31612345678"},
            "properties": {
                "order_id": "o-1",
                "revenue": "59.9",
                "email": "ann@example.nl",
                "products": [{"product_id": "sku-1", "category": "shoes", "name": "Ann"}],
            },
            "context": {"ip": "1.2.3.4", "consent": {"categoryPreferences": {"analytics": True}}},
        },
    }


def rows(lake: Path) -> list[tuple[Any, ...]]:
    glob = layout.lake_glob(lake)
    return duckdb.sql(
        f"SELECT message_id, kafka_partition, kafka_offset FROM read_parquet('{glob}') ORDER BY 1"
    ).fetchall()


def test_names_columns_and_utc_dates(tmp_path: Path) -> None:
    batch = [(7, rec("a")), (8, rec("b", "store")), (9, {"kind": "merge", "winner": "x"})]
    paths = LakeWriter(tmp_path).write_batch(2, batch)
    rel = sorted(str(p.relative_to(tmp_path)) for p in paths)
    # 23:30 at -02:00 is the next day in UTC
    assert rel == [
        "touchpoints/event_date=2026-03-02/channel=store/part-002-000000000007-000000000009.parquet",
        "touchpoints/event_date=2026-03-02/channel=web/part-002-000000000007-000000000009.parquet",
    ]
    table = pq.read_table(paths[0])
    assert table.schema.equals(SCHEMA)
    row = table.to_pylist()[0]
    assert row["category"] == "shoes" and row["product_id"] == "sku-1"
    assert row["revenue"] == 59.9 and row["consent_analytics"] is True
    assert row["kafka_partition"] == 2 and row["kafka_offset"] == 8
    dumped = str(table.to_pylist())
    for secret in ("ann@example.nl", "secret-user", "+316", "1.2.3.4", "Ann"):
        assert secret not in dumped


def test_rewrite_is_idempotent_and_leaves_no_temp(tmp_path: Path) -> None:
    writer = LakeWriter(tmp_path)
    batch = [(i, rec(f"m{i}", day=1 + i % 3)) for i in range(10)]
    first = writer.write_batch(0, batch)
    second = writer.write_batch(0, batch)
    assert first == second
    assert len(rows(tmp_path)) == 10
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any, **__: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        LakeWriter(tmp_path).write_batch(0, [(1, rec("a"))])
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_discard_uncommitted(tmp_path: Path) -> None:
    writer = LakeWriter(tmp_path)
    writer.write_batch(0, [(0, rec("a")), (1, rec("b"))])
    writer.write_batch(0, [(2, rec("c")), (3, rec("d"))])
    writer.write_batch(1, [(5, rec("x"))])
    stray = layout.temp_path(writer.write_batch(0, [(4, rec("e"))])[0])
    stray.write_bytes(b"partial")
    writer.discard_uncommitted(0, fence=1)
    assert rows(tmp_path) == [("a", 0, 0), ("b", 0, 1), ("x", 1, 5)]
    assert not stray.exists()


def test_discard_rewrites_a_compacted_file_straddling_the_fence(tmp_path: Path) -> None:
    writer = LakeWriter(tmp_path)
    for i in range(4):
        writer.write_batch(0, [(i, rec(f"m{i}"))])
    compact(tmp_path)
    writer.discard_uncommitted(0, fence=1)
    assert [r[0] for r in rows(tmp_path)] == ["m0", "m1"]
    assert [p.path.name for p in layout.part_files(tmp_path)] == [
        "part-000-000000000000-000000000001.parquet"
    ]


def test_compaction_keeps_rows_and_names_the_range(tmp_path: Path) -> None:
    writer = LakeWriter(tmp_path)
    for start in range(0, 30, 3):
        writer.write_batch(0, [(o, rec(f"p0-{o}", day=1 + o % 2)) for o in range(start, start + 3)])
    writer.write_batch(1, [(0, rec("p1-0"))])
    before = rows(tmp_path)
    result = compact(tmp_path)
    assert rows(tmp_path) == before
    names = sorted(str(p.path.relative_to(tmp_path)) for p in layout.part_files(tmp_path))
    assert names == [
        "touchpoints/event_date=2026-03-02/channel=web/part-000-000000000000-000000000029.parquet",
        "touchpoints/event_date=2026-03-02/channel=web/part-001-000000000000-000000000000.parquet",
        "touchpoints/event_date=2026-03-03/channel=web/part-000-000000000000-000000000029.parquet",
    ]
    assert result.groups_compacted == 2 and result.files_after == 3
    assert compact(tmp_path).groups_compacted == 0  # nothing left to do


def test_crash_after_rename_never_double_counts(tmp_path: Path) -> None:
    writer = LakeWriter(tmp_path)
    for o in range(3):
        writer.write_batch(0, [(o, rec(f"m{o}"))])
    inputs = [p.path for p in layout.part_files(tmp_path)]
    saved = {p: p.read_bytes() for p in inputs}
    compact(tmp_path)
    for p, data in saved.items():  # as if the deletes had not happened
        p.write_bytes(data)
    from cdp.analytics.connect import connect

    con = connect(Settings(lake_dir=tmp_path), postgres=False)
    assert con.sql("SELECT count(*) FROM touchpoints").fetchone() == (3,)
    result = compact(tmp_path)
    assert result.covered_removed == 3
    assert len(layout.part_files(tmp_path)) == 1
    assert con.sql("SELECT count(*) FROM touchpoints").fetchone() == (3,)


def test_compaction_respects_min_age_and_fence(tmp_path: Path) -> None:
    writer = LakeWriter(tmp_path)
    for o in range(4):
        writer.write_batch(0, [(o, rec(f"m{o}"))])
    assert compact(tmp_path, min_age_s=3600).groups_compacted == 0
    compact(tmp_path, fences={0: 2})
    assert [p.path.name for p in layout.part_files(tmp_path)] == [
        "part-000-000000000000-000000000002.parquet",
        "part-000-000000000003-000000000003.parquet",
    ]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=8), st.integers(0, 3))
def test_compaction_property(tmp_path_factory: Any, sizes: list[int], crash_rewrites: int) -> None:
    lake = tmp_path_factory.mktemp("lake")
    writer = LakeWriter(lake, durable=False)
    offset = 0
    for size in sizes:
        writer.write_batch(
            0, [(o, rec(f"m{o}", day=1 + o % 2)) for o in range(offset, offset + size)]
        )
        offset += size
    before = rows(lake)
    compact(lake)
    # re-delivery of already compacted batches (a crash before the fence commit)
    for _ in range(crash_rewrites):
        writer.write_batch(0, [(0, rec("m0", day=1))])
    compact(lake)
    assert rows(lake) == before
