"""The whole stream path with real worker processes: channel topics → identity →
resolved → journey + archive, against the real broker and database."""

from __future__ import annotations

from typing import Any

import orjson

from cdp.config import Settings
from cdp.kafka.producer import Producer
from cdp.pipeline.deadletter import decode
from tests.integration.workers import Workers


def ev(mid: str, channel: str, event: str, ts: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "messageId": mid,
        "type": "track",
        "event": event,
        "channel": channel,
        "timestamp": f"2026-03-{ts}+00:00",
    }
    base.update(fields)
    return base


SCENARIO = [
    # research on the web, anonymous, then logs in (identify links cookie + login + email)
    ev("w1", "web", "Product Viewed", "01T10:00:00", anonymousId="a-1",
       properties={"product_id": "sku-1", "price": 30.0, "category": "shoes"}),
    ev("w2", "web", "Product Added", "01T10:05:00", anonymousId="a-1",
       properties={"product_id": "sku-1", "price": 30.0, "quantity": 1}),
    {"messageId": "w3", "type": "identify", "channel": "web", "anonymousId": "a-1",
     "userId": "u-1", "timestamp": "2026-03-01T10:06:00+00:00",
     "identifiers": {"email": " Ann@Example.NL "}},
    # buys in the store with a loyalty card registered to the same email
    ev("l1", "loyalty", "Loyalty Card Registered", "02T09:00:00",
       identifiers={"loyalty_card": "6012 3456", "email": "ann@example.nl"}),
    ev("s1", "store", "Order Completed", "03T15:00:00",
       identifiers={"loyalty_card": "6012-3456"},
       properties={"order_id": "o-1", "revenue": 30.0,
                   "products": [{"product_id": "sku-1", "price": 30.0}]}),
    # a shared kiosk device in the store, used by someone else: must merge nobody
    ev("k1", "store", "Product Viewed", "03T16:00:00",
       identifiers={"device_id": "kiosk-7", "loyalty_card": "6099 0000"}),
    ev("k2", "store", "Product Viewed", "03T16:05:00", identifiers={"device_id": "kiosk-7"},
       anonymousId="a-2"),
]  # fmt: skip


def test_web_research_then_store_purchase_is_one_customer(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any, consume: Any
) -> None:
    for name in ("identity", "journey", "archive"):
        workers.start(name)
    with Producer(settings, source="test") as producer:
        producer.send_many(SCENARIO)
        producer.send(SCENARIO[0])  # a duplicate
        producer.send_raw(settings.topic("touchpoints.web"), b"x", b"{not json")
    workers.wait_drained(["identity", "journey", "archive"])

    customers = db.execute(
        "SELECT customer_id, count(*) FROM identities GROUP BY customer_id ORDER BY 2 DESC"
    ).fetchall()
    ann = customers[0][0]
    types = {r[0] for r in db.execute(
        "SELECT id_type FROM identities WHERE customer_id = %s", (ann,))}  # fmt: skip
    assert types == {"anonymous_id", "user_id", "email", "loyalty_card"}
    kiosk_owner = db.execute(
        "SELECT count(DISTINCT customer_id) FROM identities WHERE id_type = 'device_id'"
    ).fetchone()
    assert kiosk_owner == (0,), "a device seen on the store channel must link nothing"

    stage, since, cart, purchases = db.execute(
        "SELECT stage, stage_since, cart, purchase_count FROM journey WHERE customer_id = %s",
        (ann,),
    ).fetchone()
    assert stage == "decision"
    assert since.isoformat().startswith("2026-03-03T15:00")
    assert cart == []
    assert purchases == 1
    trans = db.execute(
        "SELECT from_stage, to_stage, message_id FROM transitions WHERE customer_id = %s"
        " ORDER BY event_time",
        (ann,),
    ).fetchall()
    assert trans[-1][1:] == ("decision", "s1")

    dead = [decode(m.value()) for m in consume(settings.topic("deadletter"), n=1)]
    assert dead[0]["reason"] == "invalid_json" and dead[0]["raw"] == b"{not json"

    resolved = consume(settings.topic("touchpoints.resolved"))
    events = [orjson.loads(m.value()) for m in resolved]
    kinds = [e["kind"] for e in events]
    assert kinds.count("event") == len(SCENARIO)  # the duplicate was applied once

    from cdp.lake.layout import part_files

    assert part_files(settings.lake_path), "the archive wrote the lake"
