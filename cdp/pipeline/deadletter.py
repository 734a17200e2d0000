"""Dead-letter records: the original bytes, where they came from, why, and when.

The value is JSON with the raw bytes in base64 (they may not be UTF-8); ``cdp dlq
replay`` decodes them and re-publishes to the source topic unchanged.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from cdp.pipeline.records import Record


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: Record
    reason: str
    detail: str
    processor: str

    def to_value(self, now: datetime | None = None) -> bytes:
        rec = self.record
        doc: dict[str, Any] = {
            "reason": self.reason,
            "detail": self.detail[:2000],
            "processor": self.processor,
            "source": {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset},
            "key_b64": base64.b64encode(rec.key).decode() if rec.key is not None else None,
            "raw_b64": base64.b64encode(rec.value).decode(),
            "time": (now or datetime.now(UTC)).isoformat(),
        }
        return orjson.dumps(doc)

    def key(self) -> bytes:
        rec = self.record
        return f"{rec.topic}:{rec.partition}:{rec.offset}".encode()


def decode(value: bytes) -> dict[str, Any]:
    """A dead-letter value back to a dict with ``raw`` and ``key`` as bytes."""
    doc: dict[str, Any] = orjson.loads(value)
    doc["raw"] = base64.b64decode(doc["raw_b64"])
    doc["key"] = base64.b64decode(doc["key_b64"]) if doc.get("key_b64") else None
    return doc
