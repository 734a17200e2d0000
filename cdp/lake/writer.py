"""Write batches of resolved events into the hive-partitioned Parquet lake.

One call writes one batch of ONE Kafka partition: a file per (event date, channel),
all named by the batch's first and last offset. Files are written under a hidden temp
name in their final directory, fsynced, then ``os.replace``d, so a reader sees either
nothing or the whole file, and rewriting the same batch after a crash replaces a file
with an identical one. Merge records are not touchpoints and are skipped: the
``touchpoints`` view re-attributes events through ``customer_redirects`` instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from cdp.lake import layout
from cdp.lake.rows import SCHEMA, to_row

Batch = Sequence[tuple[int, dict[str, Any]]]


def write_table(table: pa.Table, final: Path, durable: bool = True) -> Path:
    """Write ``table`` to ``final`` atomically (temp name in the same dir + rename)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.temp_path(final)
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd", row_group_size=256 * 1024)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if durable:
        _fsync_dir(final.parent)
    return final


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LakeWriter:
    """Writes resolved-event batches under ``{lake_dir}/touchpoints``."""

    def __init__(self, lake_dir: Path | str, durable: bool = True) -> None:
        self.lake_dir = Path(lake_dir)
        self.durable = durable

    def write_batch(self, partition: int, records: Batch) -> list[Path]:
        """Write (offset, resolved record) pairs of one partition; returns the files."""
        if not records:
            return []
        first = min(offset for offset, _ in records)
        last = max(offset for offset, _ in records)
        groups: dict[tuple[date, str], list[tuple[Any, ...]]] = {}
        for offset, record in records:
            if record.get("kind", "event") != "event":
                continue
            day, channel, row = to_row(
                str(record["customer_id"]), record["event"], partition, offset
            )
            groups.setdefault((day, channel), []).append(tuple(row.values()))
        name = layout.part_name(partition, first, last)
        written = []
        for (day, channel), group in sorted(groups.items()):
            columns = [list(col) for col in zip(*group, strict=True)]
            table = pa.Table.from_arrays(columns, schema=SCHEMA)
            final = (
                layout.table_dir(self.lake_dir)
                / f"event_date={day.isoformat()}"
                / f"channel={channel}"
                / name
            )
            written.append(write_table(table, final, self.durable))
        return written

    def discard_uncommitted(self, partition: int, fence: int) -> list[Path]:
        """Remove what this partition wrote after ``fence`` (the last committed offset).

        Files starting after the fence are leftovers of a batch whose commit did not
        happen: deleted. A (compacted) file straddling the fence is rewritten with only
        its rows at or below the fence. Stray temp files of the partition go too.
        Returns the paths removed or rewritten.
        """
        touched: list[Path] = []
        for part in layout.part_files(self.lake_dir, partition):
            if part.first > fence:
                part.path.unlink(missing_ok=True)
                touched.append(part.path)
            elif part.last > fence:
                table = pq.read_table(part.path, schema=SCHEMA)
                kept = table.filter(pc.less_equal(table["kafka_offset"], fence))
                name = layout.part_name(partition, part.first, fence)
                write_table(kept, part.path.with_name(name), self.durable)
                part.path.unlink(missing_ok=True)
                touched.append(part.path)
        root = layout.table_dir(self.lake_dir)
        if root.is_dir():
            for tmp in root.glob(f"event_date=*/channel=*/.part-{partition:03d}-*.tmp"):
                tmp.unlink(missing_ok=True)
                touched.append(tmp)
        return touched
