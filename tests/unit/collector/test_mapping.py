"""Segment payload → envelope mapping, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from cdp.collector.mapping import BatchError, identifiers_of, map_batch, map_message, to_envelope
from cdp.errors import ValidationError
from cdp.events import parse_event

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _track(**extra: Any) -> dict[str, Any]:
    return {"messageId": "m1", "event": "Product Viewed", "anonymousId": "a1"} | extra


def test_track_keeps_segment_fields_and_sets_server_fields() -> None:
    payload = _track(
        userId=42,
        properties={"sku": "X"},
        context={"library": {"name": "analytics.js"}},
        timestamp="2025-03-01T11:59:00+01:00",
        sentAt="2025-03-01T11:59:01+01:00",
        integrations={"All": True},
        channel="browser",  # Segment's own channel field: replaced by the source's
        writeKey="wk_x",
    )
    mapped = map_message(payload, event_type="track", channel="web", received_at=NOW)
    ev = mapped.event
    assert (ev.type, ev.channel.value, ev.userId, ev.event) == (
        "track",
        "web",
        "42",
        "Product Viewed",
    )
    assert ev.receivedAt == NOW
    assert ev.timestamp.isoformat() == "2025-03-01T11:59:00+01:00"
    assert ev.properties == {"sku": "X"}
    # the Kafka value is what downstream consumers accept
    assert parse_event(mapped.value) == ev


def test_missing_timestamp_defaults_to_received_at_and_original_timestamp_is_used() -> None:
    ev = map_message(_track(), event_type="track", channel="app", received_at=NOW).event
    assert ev.timestamp == NOW
    rudder = _track(originalTimestamp="2025-01-01T00:00:00Z")
    ev = map_message(rudder, event_type="track", channel="app", received_at=NOW).event
    assert ev.timestamp == datetime(2025, 1, 1, tzinfo=UTC)


def test_identifiers_from_traits_context_and_external_ids() -> None:
    payload = {
        "traits": {"email": "A@x.nl", "phone": "+31612345678", "loyalty_card": 123456},
        "context": {
            "traits": {"email": "other@x.nl"},
            "device": {"id": "dev-1"},
            "externalIds": [
                {"id": "P-9", "type": "pos_customer_id", "collection": "users"},
                {"id": "c-1", "type": "Cookie_ID"},
                {"id": "e@x.nl", "type": "email"},
                {"id": "u", "type": "user_id"},  # reserved: userId is its own field
                {"id": "bad", "type": "not a type!"},
                {"id": {"nested": 1}, "type": "weird"},
            ],
        },
    }
    assert identifiers_of(payload) == {
        "email": "A@x.nl",
        "phone": "+31612345678",
        "loyalty_card": "123456",
        "pos_customer_id": "P-9",
        "cookie_id": "c-1",
        "device_id": "dev-1",
    }


def test_context_traits_email_used_for_track() -> None:
    payload = _track(context={"traits": {"email": "t@x.nl"}})
    ev = map_message(payload, event_type="track", channel="web", received_at=NOW).event
    assert ev.identifiers.email == "t@x.nl"
    assert ev.kafka_key() == "email:t@x.nl"


def test_endpoint_type_wins_over_payload_type() -> None:
    env = to_envelope(
        {"type": "identify", "messageId": "m"}, event_type="track", channel="web", received_at=NOW
    )
    assert env["type"] == "track"


def test_page_category_moves_into_properties() -> None:
    payload = {"messageId": "p", "anonymousId": "a", "name": "Home", "category": "Docs"}
    ev = map_message(payload, event_type="page", channel="web", received_at=NOW).event
    assert ev.properties == {"category": "Docs"}


@pytest.mark.parametrize(
    ("event_type", "payload", "reason"),
    [
        ("track", {"event": "X", "anonymousId": "a"}, "missing_field"),  # no messageId
        ("track", {"messageId": "m", "anonymousId": "a"}, "missing_field"),  # no event
        ("track", {"messageId": "m", "event": "X"}, "missing_field"),  # no user/anon id
        ("alias", {"messageId": "m", "userId": "u"}, "missing_field"),
        ("group", {"messageId": "m", "userId": "u"}, "missing_field"),
        ("track", _track(timestamp="yesterday"), "invalid_value"),
        ("track", _track(properties=[1, 2]), "wrong_type"),
        ("track", _track(event="A\u0000B"), "nul_byte"),
        ("track", [1], "not_an_object"),
        ("track", _track(properties={"big": "x" * 40_000}), "too_large"),
    ],
)
def test_invalid_messages(event_type: str, payload: Any, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        map_message(payload, event_type=event_type, channel="web", received_at=NOW)
    assert info.value.reason == reason


def test_batch_uses_item_types_and_top_level_defaults() -> None:
    body = {
        "batch": [
            _track(),
            {"type": "identify", "messageId": "m2", "userId": "u", "traits": {"email": "e@x"}},
            {"type": "alias", "messageId": "m3", "userId": "u", "previousId": "a1"},
        ],
        "context": {"library": {"name": "analytics-python"}},
        "sentAt": "2025-03-01T12:00:00+00:00",
    }
    body["batch"][0]["type"] = "track"
    out = map_batch(body, channel="app", received_at=NOW)
    assert [m.event.type for m in out] == ["track", "identify", "alias"]
    assert all(m.event.context["library"]["name"] == "analytics-python" for m in out)
    assert all(m.event.sentAt == NOW for m in out)
    assert out[1].event.identifiers.email == "e@x"


def test_batch_is_all_or_nothing_and_lists_every_bad_index() -> None:
    body = {
        "batch": [
            _track(type="track"),
            {"messageId": "x"},  # no type
            _track(type="nope"),
            _track(type="track", properties={"big": "x" * 40_000}),
        ]
    }
    with pytest.raises(BatchError) as info:
        map_batch(body, channel="web", received_at=NOW)
    assert [(i, e.reason) for i, e in info.value.errors] == [
        (1, "missing_field"),
        (2, "wrong_type"),
        (3, "too_large"),
    ]
    assert info.value.too_large


@pytest.mark.parametrize(
    ("body", "reason"),
    [({}, "missing_field"), ({"batch": {}}, "wrong_type"), ([], "not_an_object")],
)
def test_batch_shape_errors(body: Any, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        map_batch(body, channel="web", received_at=NOW)
    assert info.value.reason == reason


def test_value_is_compact_json_with_received_at() -> None:
    value = map_message(_track(), event_type="track", channel="web", received_at=NOW).value
    doc = orjson.loads(value)
    assert doc["receivedAt"].startswith("2025-03-01T12:00:00")
    assert doc["channel"] == "web" and "integrations" not in doc
