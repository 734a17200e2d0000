"""Events the envelope accepts at the edges of their types (times at the ends of the
calendar, huge or odd numbers, odd traits and consent) must not stop any processor:
each is applied or dead-lettered, and the events behind them are applied."""

from __future__ import annotations

import json
from typing import Any

import orjson

from cdp.config import Settings
from cdp.kafka.producer import Producer
from cdp.kafka.reader import read_topic
from cdp.pipeline.deadletter import decode
from tests.integration.workers import Workers

ALL = ["identity", "journey", "archive"]


def _ev(mid: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"messageId": mid, "type": "track", "event": "Product Viewed",
                            "channel": "web", "timestamp": "2026-03-01T10:00:00+00:00",
                            "anonymousId": f"edge-{mid}"}  # fmt: skip
    base.update(over)
    return base


def _json(e: dict[str, Any]) -> bytes:
    # orjson refuses integers beyond 64 bits; JSON itself has no such limit
    return json.dumps(e, ensure_ascii=False).encode().replace(b'"EXP"', b"1e400")


EDGES = [
    _ev("t-low", timestamp="0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
    _ev("t-high", timestamp="9999-12-31T23:59:59-01:00"),  # after year 9999 in UTC
    _ev("t-min", timestamp="0001-01-01T00:00:00+00:00"),
    _ev("t-max", timestamp="9999-12-31T23:59:59+00:00"),
    _ev("t-sent", sentAt="0001-01-01T00:00:00+01:00", receivedAt="9999-12-31T23:59:59-01:00"),
    _ev("n-big", event="Order Completed", properties={"order_id": "o-big", "revenue": 10**30}),
    _ev("n-float", event="Order Completed", properties={"order_id": "o-f", "revenue": 1e308}),
    _ev("n-neg", event="Order Completed", properties={"order_id": "o-n", "revenue": -5}),
    _ev("n-str", event="Order Completed", properties={"order_id": "o-s", "revenue": "12,50"}),
    _ev("n-list", event="Order Completed", properties={"order_id": ["x"], "products": "x"}),
    _ev("p-qty", event="Product Added", properties={"price": -1e308, "quantity": 10**20}),
    _ev("tr-int", type="identify", userId="u-int", traits={"email": 123, "phone": ["x"]}),
    _ev("tr-odd", type="identify", userId="u-odd", traits={"email": "@", "phone": "+0"}),
    _ev("c-str", context={"consent": "yes"}),
    _ev("c-odd", context={"consent": {"categoryPreferences": "all"}}),
    _ev("c-num", context={"consent": {"categoryPreferences": {"analytics": 1}}}),
    _ev("id-long", identifiers={"email": "a" * 190 + "@x.nl", "phone": "1" * 40}),
    _ev("id-uni", identifiers={"loyalty_card": "٦٠١٢ ٣٤٥٦", "email": "ÄNN@ÉXAMPLE.nl"}),
    _ev("al-self", type="alias", userId="u-self", previousId="u-self"),
    _ev("nm-uni", event="Продукт 👀 \u202e", name="x" * 200),
    _ev("n-huge", properties={"revenue": 10**400}),  # beyond a double
    _ev("n-exp", properties={"revenue": "EXP"}),  # written as 1e400 by _json
]


def test_values_at_the_edges_stop_no_processor(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any
) -> None:
    for name in ALL:
        workers.start(name)
    web = settings.topic("touchpoints.web")
    with Producer(settings, source="test") as producer:
        for e in EDGES:  # as any Kafka client writes them (the SDK refuses some)
            producer.send_raw(web, e["anonymousId"].encode(), _json(e))
        producer.send_many([_ev(f"after-{i}") for i in range(5)])
    workers.wait_drained(ALL, timeout=120)
    crashed = [p.args for _, p in workers.procs if p.poll() is not None]
    assert not crashed, workers.logs()

    dead = [decode(m.value()) for m in read_topic(settings, settings.topic("deadletter"))]
    # times outside 1900-2200, numbers beyond a double
    refused = {"t-low", "t-high", "t-min", "t-max", "t-sent", "n-huge", "n-exp"}
    assert {(d["processor"], d["reason"]) for d in dead} == {("identity", "invalid_value")}
    assert {json.loads(d["raw"])["messageId"] for d in dead} == refused
    applied = {e["messageId"] for e in EDGES} - refused | {f"after-{i}" for i in range(5)}
    for consumer in ALL:  # each processor applied every other event
        seen = {r[0] for r in db.execute(
            "SELECT message_id FROM seen_messages WHERE consumer = %s", (consumer,))}  # fmt: skip
        assert applied <= seen, (consumer, sorted(applied - seen))


def test_a_record_the_readers_of_resolved_cannot_take_is_dead_lettered(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any
) -> None:
    """Records on the resolved topic that identity would not write today (an older
    identity's looser rules, another client) stop neither journey nor archive."""
    resolved = settings.topic("touchpoints.resolved")
    old_rules = {"kind": "event", "customer_id": "c-1", "node_id": None,
                 "event": _ev("old", timestamp="1850-01-01T00:00:00+00:00")}  # fmt: skip
    bad = [b"{oops", b"[1]", orjson.dumps({"kind": "merge", "winner": "c-1"}),
           orjson.dumps({"kind": "split"}), orjson.dumps(old_rules)]  # fmt: skip
    with Producer(settings, source="test") as producer:
        for value in bad:
            producer.send_raw(resolved, b"c-1", value)
    for name in ("journey", "archive"):
        workers.start(name)
    workers.wait_drained(["journey", "archive"], timeout=120)
    assert all(p.poll() is None for _, p in workers.procs), workers.logs()
    dead = [decode(m.value()) for m in read_topic(settings, settings.topic("deadletter"))]
    for name in ("journey", "archive"):
        reasons = sorted(d["reason"] for d in dead if d["processor"] == name)
        assert reasons == sorted(
            ["invalid_json", "not_an_object", "wrong_type", "invalid_value", "invalid_value"]
        ), (name, reasons)
