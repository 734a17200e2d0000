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


def restored_origin(headers: Any) -> str | None:
    """The original a restored copy names ("topic:p:offset"), or None for any other
    record; ``headers`` as Kafka clients give them (pairs or a mapping)."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        if name == RESTORED_HEADER:
            return bytes(value).decode() if value is not None else ""
    return None


def is_restored(headers: Any) -> bool:
    return restored_origin(headers) is not None


def by_partition(records: Iterable[Record]) -> dict[tuple[str, int], list[Record]]:
    out: dict[tuple[str, int], list[Record]] = {}
    for rec in records:
        out.setdefault((rec.topic, rec.partition), []).append(rec)
    return out
