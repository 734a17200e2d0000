"""A Kafka record as the processors see it, independent of the client library."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None


def by_partition(records: Iterable[Record]) -> dict[tuple[str, int], list[Record]]:
    out: dict[tuple[str, int], list[Record]] = {}
    for rec in records:
        out.setdefault((rec.topic, rec.partition), []).append(rec)
    return out
