"""Activation end to end with real worker processes (identity → journey → actions) on a
hand-built scenario: one offer per abandoned cart of a consenting identified
customer, none after a purchase within the hour, none without consent or identity,
quiet hours, the frequency cap, and a sales-rep notification carrying the cart."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from cdp.config import Settings
from cdp.kafka.producer import Producer
from tests.integration.workers import Workers

CONSENT = {"consent": {"categoryPreferences": {"analytics": True, "marketing": True}}}
NO_CONSENT = {"consent": {"categoryPreferences": {"analytics": True, "marketing": False}}}


def ev(mid: str, event: str, ts: str, channel: str = "web", **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"messageId": mid, "type": "track", "event": event,
                           "channel": channel, "timestamp": f"2026-03-{ts}+00:00"}  # fmt: skip
    doc.update(fields)
    return doc


def add(mid: str, ts: str, sku: str, **fields: Any) -> dict[str, Any]:
    props = {"product_id": sku, "price": 25.0, "quantity": 1, "name": f"item {sku}"}
    return ev(mid, "Product Added", ts, properties=props, **fields)


PHASE1 = [
    # ann: identified, consenting, abandons her cart → one offer at 11:00
    ev("ann-0", "Signed In", "02T09:55:00", userId="u-ann", context=CONSENT,
       identifiers={"email": "ann@example.nl"}),
    add("ann-1", "02T10:00:00", "sku-a", userId="u-ann", context=CONSENT),
    # bob buys within the hour → no offer
    ev("bob-0", "Signed In", "02T09:55:00", userId="u-bob", context=CONSENT),
    add("bob-1", "02T10:00:00", "sku-b", userId="u-bob"),
    ev("bob-2", "Order Completed", "02T10:40:00", userId="u-bob",
       properties={"order_id": "o-b", "revenue": 25.0}),
    # cy said no to marketing → no offer
    add("cy-1", "02T10:00:00", "sku-c", userId="u-cy", context=NO_CONSENT),
    # dee is anonymous → no offer
    add("dee-1", "02T10:00:00", "sku-d", anonymousId="anon-dee"),
    # eve: no consent stated (allowed by default), two adds 2 h apart → one offer (cap)
    add("eve-1", "02T12:00:00", "sku-e", userId="u-eve"),
    add("eve-2", "02T14:00:00", "sku-f", userId="u-eve"),
    ev("eve-s", "Store Visited", "02T14:30:00", "store", userId="u-eve"),
    # fay adds at 20:30: due 21:30 is in quiet hours → deferred to 08:00 the next day
    add("fay-1", "02T20:30:00", "sku-g", userId="u-fay", context=CONSENT),
]  # fmt: skip
PHASE2 = [
    # eve books an appointment: the sales rep gets her current cart right away
    ev("eve-3", "Appointment Booked", "02T15:00:00", "service", userId="u-eve",
       properties={"appointment_type": "fitting", "store_id": "st-1"}),
    # someone else's event moves the watermark two days on: every timer is due
    ev("zed-1", "Page Viewed", "04T12:00:00", anonymousId="anon-zed"),
]  # fmt: skip


def test_scenario_with_real_workers(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any, consume: Any, cli: Any
) -> None:
    names = ["identity", "journey", "actions"]
    # all three run at once: the actions worker decides only once the journey has
    # applied what the watermark passed, so the payload's cart is complete
    for name in names:
        workers.start(name)
    with Producer(settings, source="test") as producer:
        producer.send_many(PHASE1)
    workers.wait_drained(names)
    with Producer(settings, source="test") as producer:
        producer.send_many(PHASE2)
        producer.send(PHASE1[1])  # a duplicate delivery
    workers.wait_drained(names)

    msgs = consume(settings.topic("actions"))
    docs = [orjson.loads(m.value()) for m in msgs]
    assert all(m.key().decode() == d["customer_id"] for m, d in zip(msgs, docs, strict=True))
    per_id = Counter(d["action_id"] for d in docs)
    assert set(per_id.values()) == {1}, "one record per action"
    fired = {d["trigger"]["message_id"]: d for d in docs}
    assert set(fired) == {"ann-1", "eve-1", "eve-3", "fay-1"}, sorted(fired)

    ann = fired["ann-1"]
    assert ann["action"] == "send_offer_email" and ann["due_at"].startswith("2026-03-02T11:00")
    assert [line["product_id"] for line in ann["payload"]["cart"]] == ["sku-a"]
    assert not ann["deferred"]
    fay = fired["fay-1"]
    assert fay["deferred"] and fay["due_at"].startswith("2026-03-03T08:00")

    rep = fired["eve-3"]
    assert rep["action"] == "notify_sales_rep"
    assert {line["product_id"] for line in rep["payload"]["cart"]} == {"sku-e", "sku-f"}
    assert rep["payload"]["preferred_channel"] == "web"  # 2 web touchpoints, 1 store, 1 svc
    # the journey row includes every event up to the watermark (the booking's own time)
    assert set(rep["payload"]["touchpoints"]) == {"web", "store", "service"}
    assert b"u-eve" not in msgs[docs.index(rep)].value(), "identifiers are never plaintext"

    outcomes = dict(
        db.execute("SELECT trigger_message_id, outcome FROM activation_actions").fetchall()
    )
    assert outcomes == {
        "ann-1": "fired", "bob-1": "cancelled", "cy-1": "no_consent", "dee-1": "not_identified",
        "eve-1": "fired", "eve-2": "frequency_cap", "eve-3": "fired", "fay-1": "fired",
    }  # fmt: skip
    assert db.execute("SELECT count(*) FROM activation_timers").fetchone() == (0,)

    out = cli("actions", "stats", "--json")
    assert out.exit_code == 0, out.output
    stats = orjson.loads(out.stdout)
    assert stats["rules"]["abandoned_cart"]["fired"] == 3
    assert stats["rules"]["abandoned_cart"]["frequency_cap"] == 1
    assert stats["rules"]["abandoned_cart"]["deferred_quiet_hours"] == 1
    listed = orjson.loads(cli("actions", "list", "--json", "--rule", "abandoned_cart").stdout)
    assert {r["trigger_message_id"] for r in listed} == {"ann-1", "eve-1", "fay-1"}
    assert cli("actions", "list").exit_code == 0

    # replay re-publishes the same action (same id, same bytes)
    replayed = cli("actions", "replay", ann["action_id"])
    assert replayed.exit_code == 0, replayed.output
    again = [orjson.loads(m.value()) for m in consume(settings.topic("actions"))]
    assert [d for d in again if d["action_id"] == ann["action_id"]] == [ann, ann]
