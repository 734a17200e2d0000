"""Segment/RudderStack payloads → envelope (pure: no I/O, the clock is a parameter).

The envelope forbids unknown fields, so only the Segment spec fields it knows are kept;
SDK extras (``integrations``, ``_metadata``, Segment's own ``channel`` = "browser", ...)
are dropped. The channel always comes from the source of the write key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

import orjson

from cdp.errors import ValidationError
from cdp.events import Event, dump_event, parse_object
from cdp.events.envelope import EventType
from cdp.events.validate import MAX_EVENT_BYTES

EVENT_TYPES: tuple[str, ...] = get_args(EventType)

KEPT = ("messageId", "anonymousId", "userId", "previousId", "groupId", "event", "name",
        "properties", "traits", "context", "timestamp", "sentAt")  # fmt: skip
_ID_FIELDS = ("anonymousId", "userId", "previousId", "groupId")
# identifier_pairs() already names userId/anonymousId so: an externalId may not reuse them.
_RESERVED_ID_TYPES = frozenset({"user_id", "anonymous_id"})
_ID_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass
class Mapped:
    """One accepted event and its Kafka value (already size-checked)."""

    event: Event
    value: bytes


class BatchError(Exception):
    """At least one item is invalid; ``errors`` holds (index, error) for every bad item."""

    def __init__(self, errors: list[tuple[int, ValidationError]] | None = None) -> None:
        self.errors = errors if errors is not None else []
        super().__init__(f"{len(self.errors)} invalid message(s)")

    @property
    def too_large(self) -> bool:
        return any(err.reason == "too_large" for _, err in self.errors)


def _scalar_str(value: Any) -> str | None:
    """Strings as they are, numbers as strings (Segment allows numeric ids), else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _json_size(value: Any) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError as exc:  # orjson.JSONEncodeError: not JSON (only from direct callers)
        raise ValidationError("invalid_value", str(exc)) from exc


def identifiers_of(payload: Mapping[str, Any]) -> dict[str, str]:
    """Typed identifiers found in a Segment payload; the most explicit source wins:
    ``identifiers`` (cdp-aware clients) > ``traits`` > ``context.traits`` >
    ``context.externalIds`` > ``context.device.id``. Unusable values are skipped, not
    rejected (identity resolution judges values)."""
    out: dict[str, str] = {}

    def put(id_type: str, value: Any) -> None:
        text = _scalar_str(value)
        if text is not None and id_type not in out:
            out[id_type] = text

    for key, value in _dict(payload.get("identifiers")).items():
        put(str(key), value)
    context = _dict(payload.get("context"))
    for traits in (_dict(payload.get("traits")), _dict(context.get("traits"))):
        put("email", traits.get("email"))
        put("phone", traits.get("phone"))
        put("loyalty_card", traits.get("loyalty_card"))
    external = context.get("externalIds")
    for item in external if isinstance(external, list) else []:
        item = _dict(item)
        id_type = item.get("type")
        if isinstance(id_type, str):
            id_type = id_type.strip().lower()
            if _ID_TYPE.match(id_type) and id_type not in _RESERVED_ID_TYPES:
                put(id_type, item.get("id"))
    put("device_id", _dict(context.get("device")).get("id"))
    return out


def to_envelope(
    payload: Mapping[str, Any],
    *,
    event_type: str,
    channel: str,
    received_at: datetime,
) -> dict[str, Any]:
    """The envelope dict for one Segment message (not validated yet)."""
    env: dict[str, Any] = {k: payload[k] for k in KEPT if payload.get(k) is not None}
    for key in _ID_FIELDS:
        if key in env:
            env[key] = _scalar_str(env[key]) or env[key]  # a wrong type fails validation
    received = received_at.isoformat()
    # RudderStack sends originalTimestamp; Segment defaults a missing timestamp to receivedAt.
    env.setdefault("timestamp", payload.get("originalTimestamp") or received)
    category = payload.get("category")
    if category is not None and event_type in ("page", "screen"):
        props = env.get("properties")
        if isinstance(props, Mapping) and "category" not in props:
            env["properties"] = {**props, "category": category}
        elif props is None:
            env["properties"] = {"category": category}
    env["type"] = event_type
    env["channel"] = channel
    env["receivedAt"] = received
    ids = identifiers_of(payload)
    if ids:
        env["identifiers"] = ids
    return env


def _check_spec(event: Event) -> None:
    """Segment's per-type requirements, beyond the envelope's."""
    if event.type == "track" and not event.event:
        raise ValidationError("missing_field", "event is required for track")
    if event.type == "alias":
        if not event.userId or not event.previousId:
            raise ValidationError("missing_field", "alias needs userId and previousId")
        return
    if event.type == "group" and not event.groupId:
        raise ValidationError("missing_field", "groupId is required for group")
    if not event.userId and not event.anonymousId:
        raise ValidationError("missing_field", "userId or anonymousId is required")


def map_message(
    payload: Any,
    *,
    event_type: str | None,
    channel: str,
    received_at: datetime,
    max_bytes: int = MAX_EVENT_BYTES,
) -> Mapped:
    """Map, validate and encode one message; ``event_type`` None = take the payload's."""
    if not isinstance(payload, Mapping):
        raise ValidationError("not_an_object", "each message must be a JSON object")
    if event_type is None:
        raw_type = payload.get("type")
        if raw_type is None:
            raise ValidationError("missing_field", "type is required")
        if raw_type not in EVENT_TYPES:
            raise ValidationError("wrong_type", f"type must be one of {', '.join(EVENT_TYPES)}")
        event_type = str(raw_type)
    env = to_envelope(payload, event_type=event_type, channel=channel, received_at=received_at)
    event = parse_object(env)
    _check_spec(event)
    value = dump_event(event)  # refuses what the topic's consumers would dead-letter
    if len(value) > max_bytes:
        raise ValidationError("too_large", f"event is {len(value)} bytes > {max_bytes}")
    return Mapped(event, value)


def map_batch(
    body: Any, *, channel: str, received_at: datetime, max_bytes: int = MAX_EVENT_BYTES
) -> list[Mapped]:
    """All items of a ``/v1/batch`` body, or :class:`BatchError` listing every bad one.

    Top-level ``context`` and ``sentAt`` (as analytics-python and analytics.js send them)
    are defaults for each item; the item's own keys win.
    """
    if not isinstance(body, Mapping):
        raise ValidationError("not_an_object", "the body must be a JSON object")
    items = body.get("batch")
    if items is None:
        raise ValidationError("missing_field", "batch is required")
    if not isinstance(items, list):
        raise ValidationError("wrong_type", "batch must be an array")
    shared_context = _dict(body.get("context"))
    out: list[Mapped] = []
    error = BatchError()
    for index, item in enumerate(items):
        try:
            if isinstance(item, Mapping):
                if _json_size(item) > max_bytes:
                    raise ValidationError("too_large", f"message is larger than {max_bytes} bytes")
                if shared_context or "sentAt" in body:
                    item = {**item}
                    item.setdefault("sentAt", body.get("sentAt"))
                    if shared_context:
                        item["context"] = {**shared_context, **_dict(item.get("context"))}
            out.append(
                map_message(
                    item,
                    event_type=None,
                    channel=channel,
                    received_at=received_at,
                    max_bytes=max_bytes,
                )
            )
        except ValidationError as exc:
            error.errors.append((index, exc))
    if error.errors:
        raise error
    return out
