"""Which Kafka records ``cdp identity forget`` finds as the person's (pure, no I/O)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdp.events import Event
from cdp.identity.forget_match import PersonMatcher
from cdp.identity.hashing import customer_id_for
from cdp.identity.normalize import normalize
from cdp.pipeline.deadletter import DeadLetter
from cdp.pipeline.records import Record
from tests.unit.identity.helpers import HASHER, REGION

ANN = {"email": "ann@example.nl", "phone": "+31612345678", "anonymous_id": "a-1"}
NODES = [HASHER.node_id(t, normalize(t, v, REGION) or "") for t, v in ANN.items()]
CUSTOMER = customer_id_for(min(NODES))


def matcher(plaintext: tuple[str, ...] = ()) -> PersonMatcher:
    return PersonMatcher(HASHER, REGION, NODES, [CUSTOMER, "cus_merged_away"], plaintext)


def event(**fields: Any) -> dict[str, Any]:
    return {"messageId": "m-1", "type": "track", "event": "Product Viewed", "channel": "web",
            "timestamp": "2026-03-01T10:00:00+00:00", **fields}  # fmt: skip


def raw(obj: Any) -> bytes:
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    "value",
    [
        event(identifiers={"email": "  ANN@example.NL "}),  # spelled differently
        event(identifiers={"phone": "06 1234 5678"}),  # national format
        event(anonymousId="a-1"),
        event(traits={"email": "ann@example.nl"}, type="identify"),  # a Segment trait
        event(type="alias", previousId="a-1", userId="u-new"),  # type found by hashing
    ],
)
def test_finds_her_channel_events(value: dict[str, Any]) -> None:
    Event.model_validate(value)  # a valid event, as the channel topics hold them
    assert matcher().record(b"x", raw(value))


def test_leaves_other_peoples_events() -> None:
    m = matcher()
    other = event(
        identifiers={"email": "bob@example.nl", "phone": "+31687654321"},
        anonymousId="a-2",
        properties={"note": "a-1 is not an identifier here"},
    )
    assert not m.record(b"email:bob@example.nl", raw(other))


def test_finds_records_naming_her_customer_or_node_ids() -> None:
    m = matcher()
    resolved = {"kind": "event", "customer_id": CUSTOMER, "node_id": "x", "event": event()}
    merge = {"kind": "merge", "winner": "cus_other", "loser": "cus_merged_away"}
    transition = {"customer_id": "cus_other", "evidence": [NODES[1]]}
    assert m.record(CUSTOMER.encode(), raw(resolved))
    assert m.record(b"cus_other", raw(merge))
    assert m.record(b"cus_other", raw(transition))
    assert not m.record(b"cus_other", raw({**merge, "loser": "cus_third"}))


def test_finds_her_in_record_keys_and_headers() -> None:
    m = matcher()
    assert m.record(b"email:Ann@Example.nl", raw(event()))
    assert m.record(None, raw(event()), [("source", b"phone:+31 6 12345678")])
    assert not m.record(b"email:bob@example.nl", raw(event()), [("source", b"till-4")])


def dead_letter(value: bytes, key: bytes | None = None) -> bytes:
    rec = Record("cdp.touchpoints.web", 0, 7, key, value)
    return DeadLetter(rec, "invalid_json", "expected value", "identity").to_value()


def test_finds_her_in_dead_letters_of_every_kind() -> None:
    m = matcher()
    truncated = b'{"messageId": "bad", "identifiers": {"email": "ann@example.nl"'
    wrong_type = raw(event(identifiers={"email": "ann@example.nl"}, timestamp=12))
    assert m.record(b"k", dead_letter(truncated))
    assert m.record(b"k", dead_letter(wrong_type))
    assert m.record(b"k", dead_letter(b"x", key=b"anonymous_id:a-1"))
    assert m.record(b"k", dead_letter(b"\xff\xfe ann@example.nl \x00"))  # not UTF-8
    assert not m.record(b"k", dead_letter(b'{"identifiers": {"email": "bob@example.nl"'))


def test_plaintext_of_the_request_is_found_anywhere() -> None:
    m = matcher(plaintext=("Ann@Example.nl",))
    assert m.record(None, raw(event(properties={"comment": "mail ANN@example.nl back"})))
    assert not matcher().record(None, raw(event(properties={"comment": "mail ann back"})))


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    m = matcher()
    deep: Any = "ann@example.nl"
    for _ in range(5000):
        deep = [deep]
    assert m._json(deep)  # the walk is iterative
    nested = b"[" * 5000 + b'"ann@example.nl"' + b"]" * 5000  # too deep for the parser
    assert m.record(None, nested)
    assert not m.record(None, nested.replace(b"ann", b"bob"))


@given(st.text(max_size=40))
def test_random_text_never_raises(text: str) -> None:
    m = matcher()
    m.record(text.encode(), text.encode("utf-8", "surrogatepass"))
