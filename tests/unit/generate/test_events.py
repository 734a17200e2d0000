"""Every event is a valid envelope and the population behaves like retail customers."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

import orjson

from cdp.events.validate import parse_object
from cdp.generate import JUNK_VALUES, KIOSK_IDS

from .conftest import Sample

REQUIRED = {
    ("web", "Page Viewed"), ("web", "Ad Clicked"), ("web", "Products Searched"),
    ("web", "Product Viewed"), ("web", "Product Added"), ("web", "Product Removed"),
    ("web", "Checkout Started"), ("web", "Order Completed"), ("app", "Product Viewed"),
    ("app", "Order Completed"), ("newsletter", "Email Opened"),
    ("newsletter", "Email Link Clicked"), ("store", "Store Visited"),
    ("store", "Order Completed"), ("service", "Order Refunded"),
    ("service", "Support Ticket Opened"), ("service", "Appointment Booked"),
    ("loyalty", "Loyalty Card Registered"), ("loyalty", "Loyalty Points Redeemed"),
}  # fmt: skip


def _time(ev: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(ev["timestamp"])


def test_every_event_validates(sample: Sample) -> None:
    for ev in sample.events:
        parsed = parse_object(ev)
        assert len(parsed.messageId) <= 100
        assert parsed.timestamp.tzinfo is not None


def test_message_ids_unique_per_distinct_event(sample: Sample) -> None:
    by_id: dict[str, set[bytes]] = defaultdict(set)
    for ev in sample.events:
        by_id[ev["messageId"]].add(orjson.dumps(ev))
    assert all(len(payloads) == 1 for payloads in by_id.values())
    assert len(by_id) == sample.gen.stats.distinct_events


def test_duplicates_present_with_identical_payload(sample: Sample) -> None:
    counts = Counter(ev["messageId"] for ev in sample.events)
    dup_ids = {m for m, n in counts.items() if n > 1}
    extra = sum(n - 1 for n in counts.values())
    assert extra == sample.gen.stats.duplicates
    assert 0.004 < extra / len(sample.events) < 0.02
    copies: dict[str, list[bytes]] = defaultdict(list)
    for ev in sample.events:
        if ev["messageId"] in dup_ids:
            copies[ev["messageId"]].append(orjson.dumps(ev))
    assert all(len(set(c)) == 1 for c in copies.values())


def test_events_out_of_order_and_some_late(sample: Sample) -> None:
    latest = datetime.min.replace(tzinfo=_time(sample.events[0]).tzinfo)
    behind, days_late = 0, 0
    for ev in sample.events:
        t = _time(ev)
        if t < latest:
            behind += 1
            days_late += latest - t > timedelta(days=1)
        latest = max(latest, t)
    assert behind > len(sample.events) * 0.05
    assert days_late > 0


def test_all_journey_events_present(sample: Sample) -> None:
    seen = {(ev["channel"], ev.get("event")) for ev in sample.events}
    assert seen >= REQUIRED
    types = Counter(ev["type"] for ev in sample.events)
    assert types["identify"] and types["alias"] and types["screen"]


def test_login_identify_and_alias(sample: Sample) -> None:
    for ev in sample.events:
        if ev["type"] == "identify":
            assert ev["traits"]["email"]
            assert ev["anonymousId"]
        if ev["type"] == "alias":
            assert ev["previousId"] == ev["anonymousId"] and ev["userId"]


def test_orders_carry_products_and_revenue(sample: Sample) -> None:
    orders = [e for e in sample.events if e.get("event") == "Order Completed"]
    for ev in orders:
        props = ev["properties"]
        assert props["order_id"] and props["category"] and props["products"]
        assert (
            abs(props["revenue"] - sum(p["price"] * p["quantity"] for p in props["products"]))
            < 0.01
        )
        if ev["channel"] == "store":
            assert {"loyalty_card", "pos_customer_id", "email"} & set(ev["identifiers"])
    added = [e for e in sample.events if e.get("event") == "Product Added"]
    assert all(
        {"product_id", "name", "category", "price", "quantity"} <= set(e["properties"])
        for e in added
    )


def test_proportions_are_plausible(sample: Sample) -> None:
    n = len(sample.events)
    per_customer = n / sample.gen.customers
    assert 20 < per_customer < 80, per_customer
    consent = sum("consent" in ev.get("context", {}) for ev in sample.events)
    assert 0.6 < consent / n < 0.95
    channels = Counter(ev["channel"] for ev in sample.events)
    assert channels["web"] > channels["store"] > channels["loyalty"]


def test_ropo_showrooming_and_churn(sample: Sample) -> None:
    person = sample.gen.event_person
    window = timedelta(days=30)
    research: dict[str, list[datetime]] = defaultdict(list)
    visits: dict[str, list[datetime]] = defaultdict(list)
    last_seen: dict[str, datetime] = {}
    ropo = showrooming = 0
    for ev in sorted(sample.events, key=_time):
        pid, t, name = person(ev["messageId"]), _time(ev), ev.get("event")
        last_seen[pid] = t
        if ev["channel"] in ("web", "app") and name in ("Product Viewed", "Products Searched"):
            research[pid].append(t)
        if name == "Store Visited":
            visits[pid].append(t)
        if name == "Order Completed":
            if ev["channel"] == "store":
                ropo += any(t - window <= r < t for r in research[pid])
            else:
                showrooming += any(t - window <= v < t for v in visits[pid])
    assert ropo > 10 and showrooming > 10
    end = max(last_seen.values())
    assert sum(end - t > timedelta(days=20) for t in last_seen.values()) > 10


def test_kiosk_shared_by_many_on_store(sample: Sample) -> None:
    users: dict[str, set[str]] = defaultdict(set)
    for ev in sample.events:
        device = ev.get("identifiers", {}).get("device_id")
        if device in KIOSK_IDS:
            assert ev["channel"] == "store"
            users[device].add(sample.gen.event_person(ev["messageId"]))
    assert len(users) >= 3
    assert max(len(p) for p in users.values()) >= 5


def test_junk_values_present(sample: Sample) -> None:
    found: Counter[str] = Counter()
    for ev in sample.events:
        values = [ev.get("userId"), *ev.get("identifiers", {}).values()]
        found.update(v for v in values if v in JUNK_VALUES)
    assert set(found) == JUNK_VALUES
    assert sum(found.values()) >= sample.gen.stats.junk_values  # duplicates repeat junk
    assert 0.005 < sample.gen.stats.junk_values / len(sample.events) < 0.05
