"""Reading ``cdp.touchpoints.resolved`` in the processors after identity.

Identity publishes only events that pass its validation, but the topic can still hold
a record a reader cannot take: one an older identity accepted under looser rules, or
one another client wrote. A processor must not stop on it (an exception would end the
worker, and the record would stop it again on every redelivery), so such a record is
dead-lettered with its reason, as identity dead-letters bad input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cdp.errors import ValidationError
from cdp.events import Event, parse_object
from cdp.pipeline.records import Record
from cdp.pipeline.runner import BatchResult


@dataclass(frozen=True, slots=True)
class Resolved:
    record: Record
    doc: dict[str, Any]  # the record's JSON: ``kind`` "event" or "merge"
    event: Event | None  # a "kind": "event" record's envelope, validated


def load_object(rec: Record, what: str) -> dict[str, Any]:
    """``rec``'s value as a JSON object (``what`` names the record in the error), or
    :class:`cdp.errors.ValidationError`."""
    try:
        doc = orjson.loads(rec.value)
    except orjson.JSONDecodeError as exc:
        raise ValidationError("invalid_json", str(exc)) from exc
    if not isinstance(doc, dict):
        raise ValidationError("not_an_object", f"{what} must be a JSON object")
    return doc


def decode(rec: Record) -> Resolved:
    """One resolved record, or :class:`cdp.errors.ValidationError` with a reason."""
    doc = load_object(rec, "a resolved record")
    kind = doc.get("kind")
    if kind == "event":
        if not isinstance(doc.get("customer_id"), str | None):
            raise ValidationError("wrong_type", "customer_id must be a string or null")
        return Resolved(rec, doc, parse_object(doc.get("event")))
    if kind == "merge":
        if not (isinstance(doc.get("winner"), str) and isinstance(doc.get("loser"), str)):
            raise ValidationError("wrong_type", "a merge needs winner and loser strings")
        return Resolved(rec, doc, None)
    raise ValidationError("invalid_value", f"kind must be event or merge, not {kind!r}")


def read_resolved(records: Sequence[Record], processor: str, result: BatchResult) -> list[Resolved]:
    """The records ``processor`` can take; the others become its dead letters."""
    out: list[Resolved] = []
    for rec in records:
        try:
            out.append(decode(rec))
        except ValidationError as exc:
            result.refuse(rec, exc, processor)
    return out
