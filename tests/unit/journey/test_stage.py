"""Stage, flags, cart and transitions on hand-written omnichannel scenarios."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from cdp.events.envelope import Channel, Event
from cdp.journey import (
    JourneyRules,
    StageState,
    Summary,
    Transition,
    flags,
    reference_stages,
    stage_of,
    transitions,
)
from tests.unit.journey.events import at, ev

RULES = JourneyRules.default()
DAY = timedelta(days=1)

RESEARCH = [
    ev("w1", "web", "Product Viewed", at(0, 10), product_id="sku-1", price=30.0),
    ev("w2", "web", "Product Added", at(0, 10, 5), product_id="sku-1", price=30.0, quantity=1),
]
STORE_PURCHASE = ev(
    "s1",
    "store",
    "Order Completed",
    at(2, 5),
    order_id="o-1",
    revenue=30.0,
    products=[{"product_id": "sku-1", "price": 30.0}],
)


def state(*events: Event) -> StageState:
    return stage_of(Summary.of(events, RULES), RULES)


def test_web_research_then_store_purchase() -> None:
    s = Summary.of(RESEARCH, RULES)
    assert stage_of(s, RULES) == StageState("consideration", at(0, 10), "w1")
    assert [c["product_id"] for c in s.cart()] == ["sku-1"]
    assert s.cart_value() == 30.0

    s = Summary.combine(s, Summary.from_event(STORE_PURCHASE, RULES))
    assert stage_of(s, RULES) == StageState("decision", at(2, 5), "s1")
    assert s.cart() == [] and s.cart_value() == 0.0 and s.cart_updated_at() is None
    assert s.purchase_count == 1 and s.revenue == Decimal("30.0")
    assert s.first_channel == "web" and s.last_channel == "store"
    assert s.channels == {"web", "store"}
    assert s.first_seen == at(0, 10) and s.last_seen == at(2, 5)
    assert s.touch["store"][2] == "Order Completed"


def test_loyalty_card_before_first_purchase_is_not_loyalty() -> None:
    card = ev("l1", "loyalty", "Loyalty Card Registered", at(1))
    assert state(*RESEARCH, card).stage == "consideration"
    assert state(*RESEARCH, card, STORE_PURCHASE) == StageState("decision", at(2, 5), "s1")
    later = ev("l2", "loyalty", "Loyalty Points Redeemed", at(9))
    assert state(*RESEARCH, card, STORE_PURCHASE, later) == StageState("loyalty", at(9), "l2")


def test_second_purchase_is_loyalty() -> None:
    second = ev("s2", "web", "Order Completed", at(30), order_id="o-2", total=12.5)
    s = Summary.of([*RESEARCH, second, STORE_PURCHASE], RULES)
    assert stage_of(s, RULES) == StageState("loyalty", at(30), "s2")
    assert s.purchase_count == 2 and s.revenue == Decimal("42.5")


def test_repeat_purchase_rule_can_be_switched_off() -> None:
    data = {"repeat_purchase_is_loyalty": False, "signals": [
        {"name": "p", "stage": "decision", "events": ["Order Completed"]}]}  # fmt: skip
    rules = JourneyRules.from_dict(data)
    second = ev("s2", "web", "Order Completed", at(30))
    assert stage_of(Summary.of([STORE_PURCHASE, second], rules), rules).stage == "decision"


def test_service_only_after_a_purchase() -> None:
    early = ev("t1", "service", "Support Ticket Opened", at(1))
    assert state(*RESEARCH, early).stage == "consideration"
    assert state(*RESEARCH, early, STORE_PURCHASE).stage == "decision"
    same_time = ev("t2", "service", "Appointment Booked", at(2, 5))
    assert state(early, STORE_PURCHASE, same_time) == StageState("service", at(2, 5), "t2")
    refund = ev("r1", "web", "Order Refunded", at(4))
    assert state(early, refund, STORE_PURCHASE) == StageState("service", at(4), "r1")


def test_checkout_before_purchase_sets_decision_since() -> None:
    checkout = ev("c1", "web", "Checkout Started", at(1))
    assert state(*RESEARCH, STORE_PURCHASE, checkout) == StageState("decision", at(1), "c1")


def test_awareness_and_identify_only() -> None:
    ident = Event(messageId="i1", type="identify", channel=Channel.web, timestamp=at(0), userId="u")
    page = Event(messageId="p1", type="page", channel=Channel.web, timestamp=at(1), name="Home")
    assert state(ident) == StageState("awareness", at(0), "i1")
    s = Summary.of([page, ident], RULES)
    assert stage_of(s, RULES) == StageState("awareness", at(0), "i1")
    assert set(s.signals) == {"visit"} and s.touch["web"][2] == "Page Viewed"
    with pytest.raises(ValueError, match="empty"):
        stage_of(Summary(), RULES)


def test_ties_go_to_smaller_message_id() -> None:
    a = ev("b", "web", "Product Viewed", at(1))
    b = ev("a", "app", "Products Searched", at(1))
    s = Summary.of([a, b], RULES)
    assert stage_of(s, RULES).message_id == "a"
    assert s.first_channel == "app"


def test_cart_is_order_independent() -> None:
    add1 = ev("a1", "web", "Product Added", at(1), product_id="p", price=2.0, quantity=1)
    rm = ev("r1", "web", "Product Removed", at(2), product_id="p")
    add2 = ev("a2", "app", "Product Added", at(3), product_id="p", price=2.5, quantity=3, name="X")
    other = ev("a3", "web", "Product Added", at(1), sku=7, price="junk")
    for order in ([add1, rm, add2, other], [add2, other, rm, add1], [other, rm, add2, add1]):
        s = Summary.of(order, RULES)
        assert s.cart() == [
            {"product_id": "7", "name": None, "price": None, "quantity": 1,
             "added_at": at(1).isoformat()},
            {"product_id": "p", "name": "X", "price": 2.5, "quantity": 3,
             "added_at": at(3).isoformat()},
        ]  # fmt: skip
        assert s.cart_value() == 7.5 and s.cart_updated_at() == at(3)
    s = Summary.of([add1, rm], RULES)
    assert s.cart() == []
    after_purchase = ev("a4", "web", "Product Added", at(5), product_id="q", price=1.0)
    assert [c["product_id"] for c in state_cart(add1, STORE_PURCHASE, after_purchase)] == ["q"]


def state_cart(*events: Event) -> list[dict[str, object]]:
    return Summary.of(events, RULES).cart()


def _at(s: Summary, when: datetime) -> frozenset[str]:
    return flags(s, when, RULES)


def test_stuck_at_watermark() -> None:
    s = Summary.of(RESEARCH, RULES)
    last_add = at(0, 10, 5)
    assert _at(s, last_add + 14 * DAY) == frozenset()
    assert _at(s, last_add + 14 * DAY + timedelta(microseconds=1)) == {"stuck"}
    assert flags(s, last_add + 15 * DAY, RULES, stage_of(s, RULES)) == {"stuck"}
    # emptied cart, or a later stage: not stuck
    rm = ev("r", "web", "Product Removed", at(1), product_id="sku-1")
    assert _at(Summary.of([*RESEARCH, rm], RULES), last_add + 20 * DAY) == frozenset()
    checkout = ev("c", "web", "Checkout Started", at(1))
    assert _at(Summary.of([*RESEARCH, checkout], RULES), last_add + 20 * DAY) == frozenset()


def test_lapsed_at_watermark() -> None:
    s = Summary.of([*RESEARCH, STORE_PURCHASE], RULES)
    assert _at(s, at(2, 5) + 90 * DAY) == frozenset()
    assert _at(s, at(2, 5) + 90 * DAY + timedelta(seconds=1)) == {"lapsed"}
    stale = Summary.of(RESEARCH, RULES)
    assert _at(stale, at(0, 10, 5) + 91 * DAY) == {"stuck", "lapsed"}
    assert _at(Summary(), at(500)) == frozenset()
    with pytest.raises(ValueError, match="naive"):
        _at(s, datetime(2026, 9, 1))


def test_transitions() -> None:
    a = StageState("consideration", at(0), "w1")
    b = StageState("decision", at(2), "s1")
    assert transitions(None, a) == Transition(None, "consideration", at(0), "w1")
    assert transitions(a, b) == Transition("consideration", "decision", at(2), "s1")
    assert transitions(b, StageState("decision", at(1), "c1")) is None


def test_revenue_parsing() -> None:
    def revenue(**props: object) -> Decimal:
        return Summary.from_event(ev("o", "web", "Order Completed", at(), **props), RULES).revenue

    assert revenue(revenue=19.99, total=25) == Decimal("19.99")
    assert revenue(total=25) == Decimal(25)
    assert revenue(revenue="7.10") == Decimal("7.10")
    assert revenue(revenue=True) == revenue(revenue="abc") == revenue() == Decimal(0)
    assert revenue(revenue=float("nan")) == Decimal(0)


def test_duplicate_is_idempotent_except_counters() -> None:
    s = Summary.of([*RESEARCH, STORE_PURCHASE], RULES)
    dup = Summary.from_event(STORE_PURCHASE, RULES)
    twice = Summary.combine(s, dup)
    assert stage_of(twice, RULES) == stage_of(s, RULES)
    a, b = s.to_json(), twice.to_json()
    assert b["purchases"]["count"] == 2 and b["signals"]["purchase"]["count"] == 2
    for j in (a, b):
        j["purchases"].pop("count"), j["purchases"].pop("revenue")
        j["signals"]["purchase"].pop("count")
    assert a == b


def test_reference_stages() -> None:
    got = reference_stages(
        {"ann": [STORE_PURCHASE, *RESEARCH], "bob": [RESEARCH[0]], "nobody": []}, RULES
    )
    assert got == {
        "ann": StageState("decision", at(2, 5), "s1"),
        "bob": StageState("consideration", at(0, 10), "w1"),
    }


def test_from_json_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="invalid journey summary"):
        Summary.from_json({"v": 1})
    with pytest.raises(ValueError, match="unsupported summary version"):
        Summary.from_json({"v": 9})
