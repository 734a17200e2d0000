"""Write batches of resolved events into the hive-partitioned Parquet lake.

One call writes one batch of ONE Kafka partition: a file per (event date, channel),
all named by the batch's first and last offset. Files are written under a hidden temp
name in their final directory, fsynced (all of a batch's files concurrently), then
``os.replace``d, so a reader sees either nothing or the whole file, and rewriting the
same batch after a crash replaces a file with an identical one. Merge records are
not touchpoints and are skipped: the ``touchpoints`` view re-attributes events
through ``customer_redirects`` instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from cdp.lake import layout
from cdp.lake.rows import SCHEMA, to_row

Batch = Sequence[tuple[int, dict[str, Any]]]
_FSYNC_THREADS = 16  # fsync waits on the disk, not the GIL


def write_table(table: pa.Table, final: Path, durable: bool = True) -> Path:
    """Write ``table`` to ``final`` atomically (temp name in the same dir + rename)."""
    return write_tables([(table, final)], durable)[0]


def write_tables(items: Sequence[tuple[pa.Table, Path]], durable: bool = True) -> list[Path]:
    """Write each ``(table, final)`` atomically: all under temp names first, then (when
    ``durable``) every temp file fsynced, then renamed, then every directory whose
    entries changed fsynced. The fsyncs run concurrently: a batch spread over many
    (date, channel) directories costs about one disk flush, not one per file."""
    written: list[tuple[Path, Path]] = []  # (temp, final)
    new_dirs: set[Path] = set()
    try:
        for table, final in items:
            if not final.parent.is_dir():
                new_dirs |= _missing_dirs(final.parent)
                final.parent.mkdir(parents=True, exist_ok=True)
            tmp = layout.temp_path(final)
            written.append((tmp, final))
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh, compression="zstd", row_group_size=256 * 1024)
        if durable:
            _fsync_all([tmp for tmp, _ in written])
        for tmp, final in written:
            os.replace(tmp, final)
    except BaseException:
        for tmp, _ in written:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    if durable:
        # the renamed entries, and the entries of directories created on the way
        _fsync_all({final.parent for _, final in written} | {d.parent for d in new_dirs})
    return [final for _, final in written]


def _missing_dirs(directory: Path) -> set[Path]:
    missing = set()
    while not directory.is_dir():
        missing.add(directory)
        directory = directory.parent
    return missing


def _fsync_all(paths: Iterable[Path]) -> None:
    paths = sorted(set(paths))
    if len(paths) <= 1:
        for path in paths:
            _fsync(path)
        return
    with ThreadPoolExecutor(max_workers=min(_FSYNC_THREADS, len(paths))) as pool:
        list(pool.map(_fsync, paths))  # re-raises the first error


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
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
        tables = []
        for (day, channel), group in sorted(groups.items()):
            columns = [list(col) for col in zip(*group, strict=True)]
            table = pa.Table.from_arrays(columns, schema=SCHEMA)
            final = (
                layout.table_dir(self.lake_dir)
                / f"event_date={day.isoformat()}"
                / f"channel={channel}"
                / name
            )
            tables.append((table, final))
        return write_tables(tables, self.durable)

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
