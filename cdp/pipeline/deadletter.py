"""Dead-letter records: the original bytes, where they came from, why, and when.

The value is JSON with the raw bytes in base64 (they may not be UTF-8); ``cdp dlq
replay`` decodes them and re-publishes to the source topic unchanged.

Any Kafka client can write a record of nearly a megabyte, and base64 makes it a third
larger: a dead letter carrying it whole would be refused by the broker, and the
partition would wait on it forever. So a dead letter keeps the first
:data:`RAW_KEPT` bytes of the value (and of the key), with the full size, a SHA-256
and the source's coordinates to fetch the rest while retention keeps it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from cdp.pipeline.records import Record

# bytes of a record's value, and of its key, a dead letter carries: far below the
# broker's default limit of 1 MiB per record once in base64
RAW_KEPT = 256 * 1024


def _kept(data: bytes) -> dict[str, Any]:
    if len(data) <= RAW_KEPT:
        return {"b64": base64.b64encode(data).decode()}
    return {
        "b64": base64.b64encode(data[:RAW_KEPT]).decode(),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


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
            "key_b64": None,
            "time": (now or datetime.now(UTC)).isoformat(),
        }
        for name, data in (("key", rec.key), ("raw", rec.value)):
            if data is None:
                continue
            kept = _kept(data)
            doc[f"{name}_b64"] = kept.pop("b64")
            if kept:  # cut: {name}_bytes and {name}_sha256 describe the whole
                doc.update({f"{name}_{k}": v for k, v in kept.items()})
                doc["truncated"] = True
        return orjson.dumps(doc)

    def key(self) -> bytes:
        rec = self.record
        return f"{rec.topic}:{rec.partition}:{rec.offset}".encode()


def decode(value: bytes) -> dict[str, Any]:
    """A dead-letter value back to a dict with ``raw`` and ``key`` as bytes, and
    ``truncated`` (whether either was cut at :data:`RAW_KEPT` bytes)."""
    doc: dict[str, Any] = orjson.loads(value)
    doc["raw"] = base64.b64decode(doc["raw_b64"])
    doc["key"] = base64.b64decode(doc["key_b64"]) if doc.get("key_b64") else None
    doc["truncated"] = bool(doc.get("truncated"))
    return doc
