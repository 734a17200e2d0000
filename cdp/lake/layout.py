"""Where lake files live and what their names mean.

``{lake}/touchpoints/event_date=YYYY-MM-DD/channel=CH/part-PPP-FFFFFFFFFFFF-LLLLLLLLLLLL.parquet``:
P is the Kafka partition of ``cdp.touchpoints.resolved``, F and L the first and last
offset of the batch (or, after compaction, of the batches) the file holds. Kafka
offsets are immutable, so two files of one directory and partition whose ranges
overlap hold the same rows for the overlap: that is what makes rewrites idempotent and
covered files redundant.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

TABLE = "touchpoints"
_NAME = re.compile(r"^part-(\d{3,})-(\d{12,})-(\d{12,})\.parquet$")


@dataclass(frozen=True, order=True)
class PartFile:
    """One lake file and the offset range its name claims."""

    path: Path
    partition: int
    first: int
    last: int

    def covers(self, other: PartFile) -> bool:
        """True when ``other`` is redundant: same dir/partition, range inside ours."""
        return (
            self.path != other.path
            and self.path.parent == other.path.parent
            and self.partition == other.partition
            and self.first <= other.first
            and other.last <= self.last
        )


def table_dir(lake_dir: Path) -> Path:
    return lake_dir / TABLE


def part_name(partition: int, first: int, last: int) -> str:
    return f"part-{partition:03d}-{first:012d}-{last:012d}.parquet"


def parse(path: Path) -> PartFile | None:
    match = _NAME.match(path.name)
    if match is None:
        return None
    partition, first, last = (int(g) for g in match.groups())
    return PartFile(path, partition, first, last)


def part_files(lake_dir: Path, partition: int | None = None) -> list[PartFile]:
    """Every committed-looking part file (temp files never match), sorted."""
    root = table_dir(lake_dir)
    if not root.is_dir():
        return []
    found = (parse(p) for p in root.glob("event_date=*/channel=*/part-*.parquet"))
    return sorted(f for f in found if f and (partition is None or f.partition == partition))


def temp_path(final: Path) -> Path:
    """A unique hidden name in the same directory (same filesystem: rename is atomic)."""
    return final.with_name(f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def lake_glob(lake_dir: Path) -> str:
    return str(table_dir(lake_dir) / "event_date=*" / "channel=*" / "part-*.parquet")
