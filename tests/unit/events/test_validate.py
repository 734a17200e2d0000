"""Envelope validation: every kind of broken input gets its reason code."""

from __future__ import annotations

import contextlib
from datetime import UTC, timedelta
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdp.errors import ValidationError
from cdp.events import MAX_DEPTH, MAX_EVENT_BYTES, dump_event, parse_event
from cdp.events import schema as schema_mod
from cdp.events.envelope import EARLIEST_TIME, LATEST_TIME

GOOD: dict[str, Any] = {
    "messageId": "m-1",
    "type": "track",
    "event": "Order Completed",
    "channel": "store",
    "timestamp": "2026-03-01T10:00:00+01:00",
    "identifiers": {"loyalty_card": "1234 5678", "email": "A@B.nl"},
    "properties": {"order_id": "o1", "revenue": 12.5},
}


def _raw(**over: Any) -> bytes:
    ev = dict(GOOD)
    ev.update(over)
    return orjson.dumps({k: v for k, v in ev.items() if v is not ...})


def reason(raw: bytes) -> str:
    with pytest.raises(ValidationError) as err:
        parse_event(raw)
    assert err.value.raw == raw  # the dead-letter record keeps the original bytes
    return err.value.reason


def test_good_event_round_trips() -> None:
    ev = parse_event(_raw())
    assert ev.channel.value == "store"
    assert parse_event(dump_event(ev)) == ev
    assert ev.kafka_key() == "loyalty_card:1234 5678"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b'{"messageId": "a\x00b"}', "nul_byte"),
        (b'{"messageId": "a\\u0000b"}', "nul_byte"),
        (b"[1, 2]", "not_an_object"),
        (_raw(messageId=...), "missing_field"),
        (_raw(channel="tv"), "unknown_channel"),
        (_raw(type="launch"), "wrong_type"),
        (_raw(messageId=12), "wrong_type"),
        (_raw(properties="x"), "wrong_type"),
        (_raw(timestamp="2026-03-01T10:00:00"), "invalid_value"),  # no zone
        (_raw(messageId="x" * 101), "invalid_value"),
        (_raw(unknownTopLevel=1), "invalid_value"),
        # times a processor could not carry: not even convertible to UTC, or out of range
        (_raw(timestamp="0001-01-01T00:00:00+01:00"), "invalid_value"),
        (_raw(timestamp="9999-12-31T23:59:59-01:00"), "invalid_value"),
        (_raw(timestamp="1899-12-31T23:59:59+00:00"), "invalid_value"),
        (_raw(timestamp="2200-01-01T00:00:00+00:00"), "invalid_value"),
        (_raw(sentAt="0001-01-01T00:00:00+01:00"), "invalid_value"),
        (_raw(receivedAt="2300-01-01T00:00:00+00:00"), "invalid_value"),
        # numbers the processors after identity (orjson) cannot read
        (
            _raw(properties={"revenue": "HUGE"}).replace(b'"HUGE"', b"1" + b"0" * 400),
            "invalid_value",
        ),
        (_raw(properties={"revenue": "HUGE"}).replace(b'"HUGE"', b"-1e400"), "invalid_value"),
        (b'{"messageId": tru, "revenue": 1e400}', "invalid_json"),  # broken before it
    ],
)
def test_broken_envelopes_are_rejected_with_reason(raw: bytes, expected: str) -> None:
    assert reason(raw) == expected


@given(st.datetimes(timezones=st.timezones()))
def test_every_accepted_time_converts_to_utc_within_the_range(moment: Any) -> None:
    try:
        ev = parse_event(_raw(timestamp=moment.isoformat()))
    except ValidationError as exc:
        assert exc.reason == "invalid_value"
        return
    utc = ev.timestamp.astimezone(UTC)
    assert EARLIEST_TIME <= utc < LATEST_TIME
    assert utc + timedelta(days=3650) > utc  # day arithmetic downstream does not overflow


def test_numbers_a_double_holds_are_accepted() -> None:
    for number in (b"1" + b"0" * 300, b"1e308", b"-1.5E-320", b"123456789012345678901234567890"):
        ev = parse_event(_raw(properties={"revenue": "N"}).replace(b'"N"', number))
        assert "revenue" in ev.properties


def test_the_sdk_refuses_an_integer_json_cannot_carry_with_a_reason() -> None:
    ev = parse_event(_raw())
    ev.properties["revenue"] = 10**30  # pydantic takes it; orjson cannot write it
    with pytest.raises(ValidationError) as err:
        dump_event(ev)
    assert err.value.reason == "invalid_value"


def test_nesting_deeper_than_limit() -> None:
    nested: Any = "leaf"
    for _ in range(MAX_DEPTH + 1):
        nested = {"k": nested}
    assert reason(_raw(properties=nested)) == "too_deep"


def test_oversize_event() -> None:
    assert reason(_raw(properties={"blob": "x" * MAX_EVENT_BYTES})) == "too_large"


def test_unusable_identifier_values_do_not_reject_the_event() -> None:
    ev = parse_event(_raw(identifiers={"email": "null", "phone": "", "loyalty_card": "42"}))
    assert ("loyalty_card", "42") in ev.identifier_pairs()


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_validation_error(raw: bytes) -> None:
    with contextlib.suppress(ValidationError):
        parse_event(raw)


def test_generated_schemas_are_checked_in_and_current() -> None:
    for name, content in schema_mod.rendered().items():
        path = schema_mod.SCHEMAS_DIR / name
        assert path.exists(), f"{name} missing: run `make schemas`"
        assert path.read_bytes() == content, f"{name} drifted from the model: run `make schemas`"


def test_json_schema_accepts_what_the_model_accepts() -> None:
    doc = orjson.loads(schema_mod.rendered()["touchpoints.store.schema.json"])
    jsonschema.validate(orjson.loads(_raw()), doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(orjson.loads(_raw(channel="web")), doc)
