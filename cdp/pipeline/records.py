"""A Kafka record as the processors see it, independent of the client library."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None
    # a copy ``cdp identity forget`` wrote back after erasing a topic's prefix: every
    # processor had applied the original, so processors skip it (see RESTORED_HEADER)
    restored: bool = False


# The header marking a restored copy; its value names the original ("topic:p:offset").
RESTORED_HEADER = "cdp-restored"


def is_restored(headers: Any) -> bool:
    """Whether Kafka headers (pairs or a mapping, as clients give them) mark a
    restored copy."""
    if not headers:
        return False
    if isinstance(headers, Mapping):
        return RESTORED_HEADER in headers
    return any(name == RESTORED_HEADER for name, _ in headers)


def by_partition(records: Iterable[Record]) -> dict[tuple[str, int], list[Record]]:
    out: dict[tuple[str, int], list[Record]] = {}
    for rec in records:
        out.setdefault((rec.topic, rec.partition), []).append(rec)
    return out
