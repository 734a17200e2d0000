"""Raw bytes → :class:`Event`, or a :class:`ValidationError` with a reason code.

Only a broken envelope rejects an event. An unusable identifier value inside a valid
event ("null", "", a malformed email) is not an envelope error: identity resolution
ignores that one value and counts it.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pydantic

from cdp.errors import ValidationError
from cdp.events.envelope import CHANNELS, Event

MAX_EVENT_BYTES = 32 * 1024
MAX_DEPTH = 16

# Reason codes, stable: they are written to the dead-letter topic and filtered on by
# `cdp dlq replay --reason`.
REASONS = (
    "too_large",
    "invalid_utf8",
    "nul_byte",
    "invalid_json",
    "not_an_object",
    "too_deep",
    "missing_field",
    "unknown_channel",
    "wrong_type",
    "invalid_value",
)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value, stopping early once past ``limit``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def _classify(exc: pydantic.ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    kind = first["type"]
    if kind == "missing":
        return "missing_field", f"{loc} is required"
    if loc == "channel":
        return "unknown_channel", f"channel must be one of {', '.join(CHANNELS)}"
    if kind.endswith("_type") or kind in {"literal_error", "enum"}:
        return "wrong_type", f"{loc}: {first['msg']}"
    return "invalid_value", f"{loc}: {first['msg']}"


def parse_object(obj: Any, raw: bytes | None = None) -> Event:
    """Validate an already-decoded JSON object."""
    if not isinstance(obj, dict):
        raise ValidationError("not_an_object", "the event must be a JSON object", raw)
    if _depth(obj, MAX_DEPTH) > MAX_DEPTH:
        raise ValidationError("too_deep", f"nesting deeper than {MAX_DEPTH} levels", raw)
    try:
        return Event.model_validate(obj)
    except pydantic.ValidationError as exc:
        reason, detail = _classify(exc)
        raise ValidationError(reason, detail, raw) from exc


def _may_be_too_deep(raw: bytes) -> bool:
    # Nesting can never exceed the number of opening brackets: counting them is a
    # fast C scan that clears almost every real event without walking the tree.
    return raw.count(b"{") + raw.count(b"[") > MAX_DEPTH


# A JSON number too large for a double has 309 digits or more, or a 3-digit exponent.
# The processors after identity read records with orjson, which refuses such numbers,
# so identity must not let one through; only events this matches are parsed twice.
_MAY_OVERFLOW_A_DOUBLE = re.compile(rb"\d{309}|[eE][+-]?\d{3}")


def _check_numbers(raw: bytes) -> None:
    if _MAY_OVERFLOW_A_DOUBLE.search(raw) is None:
        return
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "infinity" in str(exc):  # else broken JSON: reported as such by the caller
            raise ValidationError("invalid_value", f"a number beyond a double: {exc}", raw) from exc


def parse_event(raw: bytes) -> Event:
    """Decode and validate one raw record value."""
    if len(raw) > MAX_EVENT_BYTES:
        raise ValidationError("too_large", f"{len(raw)} bytes > {MAX_EVENT_BYTES}", raw)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("invalid_utf8", str(exc), raw) from exc
    if b"\x00" in raw or b"\\u0000" in raw:
        raise ValidationError("nul_byte", "NUL characters are not allowed", raw)
    if _may_be_too_deep(raw):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValidationError("invalid_json", str(exc), raw) from exc
        return parse_object(obj, raw)
    _check_numbers(raw)
    try:
        # pydantic parses the JSON itself (in Rust): one pass instead of two
        return Event.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise ValidationError("invalid_json", exc.errors()[0]["msg"], raw) from exc
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as json_exc:
            raise ValidationError("invalid_json", str(json_exc), raw) from json_exc
        return parse_object(obj, raw)  # classifies the error the same way as dicts


def dump_event(event: Event) -> bytes:
    """The wire form of an event (compact JSON, camelCase, no nulls)."""
    doc = event.model_dump(mode="json", exclude_none=True, by_alias=True)
    try:
        value = orjson.dumps(doc)
    except TypeError as exc:  # what orjson refuses of JSON-mode data: an int over 64 bits
        raise ValidationError(
            "invalid_value", f"{exc}: send such a number as a string or a float"
        ) from exc
    if b"\\u0000" in value:  # parse_event, and so identity, refuses NULs: refuse them here
        raise ValidationError("nul_byte", "NUL characters are not allowed")
    return value
