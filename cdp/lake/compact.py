"""Merge small lake files per (date, channel, Kafka partition) into one.

The compacted file is named by the range it spans (min first offset, max last offset),
written to a temp name and renamed, then the inputs are deleted. A crash between the
rename and the deletes leaves inputs that the compacted file *covers*; every run
starts by deleting covered files, and the ``touchpoints`` view de-duplicates by
``message_id`` meanwhile, so nothing is ever counted twice.

Only a leading run of eligible files is merged (old enough, at or below the fence):
merging around a skipped file would make the output cover it, and the next run would
delete it as redundant.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from cdp.lake import layout
from cdp.lake.rows import SCHEMA
from cdp.lake.writer import write_table


@dataclass
class CompactionResult:
    files_before: int = 0
    files_after: int = 0
    covered_removed: int = 0
    groups_compacted: int = 0
    rows_written: int = 0
    outputs: list[Path] = field(default_factory=list)


def remove_covered(parts: list[layout.PartFile]) -> tuple[list[layout.PartFile], int]:
    """Delete files another file of the same dir and partition covers."""
    kept: list[layout.PartFile] = []
    removed = 0
    for part in parts:
        if any(other.covers(part) for other in parts if other.path.exists()):
            part.path.unlink(missing_ok=True)
            removed += 1
        else:
            kept.append(part)
    return kept, removed


def _eligible_run(
    parts: list[layout.PartFile], min_age_s: float, fence: int | None, now: float
) -> list[layout.PartFile]:
    run: list[layout.PartFile] = []
    for part in sorted(parts, key=lambda p: (p.first, p.last)):
        old_enough = now - part.path.stat().st_mtime >= min_age_s
        committed = fence is None or part.last <= fence
        if not (old_enough and committed):
            break
        run.append(part)
    return run


def _merge(con: duckdb.DuckDBPyConnection, run: list[layout.PartFile]) -> tuple[Path, int]:
    files = [str(p.path) for p in run]
    # Overlapping inputs hold identical rows for the overlap (immutable offsets).
    table = con.execute(
        "SELECT * FROM read_parquet($files, hive_partitioning = false) "
        "QUALIFY row_number() OVER (PARTITION BY kafka_offset) = 1 ORDER BY kafka_offset",
        {"files": files},
    ).to_arrow_table()
    table = table.select(SCHEMA.names).cast(SCHEMA)
    first = min(p.first for p in run)
    last = max(p.last for p in run)
    final = run[0].path.with_name(layout.part_name(run[0].partition, first, last))
    write_table(table, final)
    for part in run:
        if part.path != final:
            part.path.unlink(missing_ok=True)
    return final, table.num_rows


def compact(
    lake_dir: Path,
    min_age_s: float = 0.0,
    fences: dict[int, int] | None = None,
    min_files: int = 2,
) -> CompactionResult:
    """Compact every (date, channel, partition) group with at least ``min_files`` files.

    ``min_age_s`` skips files modified recently (a batch whose commit may be pending);
    ``fences`` (partition → last committed offset), when known, skips uncommitted ones.
    """
    result = CompactionResult()
    parts = layout.part_files(lake_dir)
    result.files_before = len(parts)
    groups: dict[tuple[Path, int], list[layout.PartFile]] = defaultdict(list)
    for part in parts:
        groups[(part.path.parent, part.partition)].append(part)
    now = time.time()
    con = duckdb.connect()
    try:
        for (_, partition), members in sorted(groups.items()):
            members, removed = remove_covered(members)
            result.covered_removed += removed
            fence = None if fences is None else fences.get(partition, -1)
            run = _eligible_run(members, min_age_s, fence, now)
            if len(run) < max(min_files, 2):
                continue
            final, rows = _merge(con, run)
            result.groups_compacted += 1
            result.rows_written += rows
            result.outputs.append(final)
    finally:
        con.close()
    result.files_after = len(layout.part_files(lake_dir))
    return result
